"""The documentation site: it builds with ``mkdocs build --strict`` and renders in a browser.

The site is built into a temporary directory and served by ``http.server`` on
127.0.0.1; headless Chromium (Debian's ``chromium`` package) opens the home page and an
API reference page over the DevTools protocol, and each page must:

- render: a screenshot is taken, and it is a PNG with something drawn on it;
- have its title, its heading and the site navigation in the rendered DOM, and
  Material's script must have run;
- log no console error, throw no uncaught exception, and fetch nothing but the local
  site (no CDN, no web fonts): the site has to work offline.

Without Chromium (or without the ``docs`` packages) the browser tests skip, saying why,
unless ``PGVEC_REQUIRE_BROWSER=1`` (CI sets it): then they fail.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import functools
import http.server
import importlib.util
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("PGVEC_REQUIRE_BROWSER") == "1"
#: the modules `mkdocs build` needs: mkdocs, the theme, mkdocstrings and its handler
DOCS_MODULES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
#: the home page and one API page, as (path in the site, expected heading, an element id)
PAGES = [
    ("", "langchain-pgvec", None),
    ("reference/store/", "PGVecStore", "langchain_pgvec.PGVecStore.similarity_search"),
]
NAVIGATION = ["Quickstart", "Concepts", "Filters", "Benchmarks", "API reference"]
SECONDS = 60.0


def _unavailable(reason: str) -> NoReturn:
    if REQUIRED:
        pytest.fail(f"{reason}; PGVEC_REQUIRE_BROWSER=1 asks for the docs check", pytrace=False)
    pytest.skip(reason)


def _require_docs_packages() -> None:
    missing = [name for name in DOCS_MODULES if _find_spec(name) is None]
    if missing:
        _unavailable(
            f"{', '.join(missing)} not installed: pip install -e '.[docs]' (the test extra has it)"
        )


def _find_spec(name: str) -> Any:
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None


def _chromium() -> str:
    for name in (os.environ.get("PGVEC_CHROMIUM"), "chromium", "chromium-browser"):
        found = shutil.which(name) if name else None
        if found:
            return found
    _unavailable("no chromium on PATH: apt-get install chromium (or set PGVEC_CHROMIUM)")


# ------------------------------------------------------------------------------ the build


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built with ``mkdocs build --strict`` into a temporary directory."""
    _require_docs_packages()
    out = tmp_path_factory.mktemp("site")
    # no bytecode next to docs/hooks.py in the working tree
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean"]
    command += ["--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(out)]
    built = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.stderr}"
    return out


def _public_names() -> list[str]:
    tree = ast.parse((ROOT / "langchain_pgvec" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return [str(name) for name in ast.literal_eval(node.value)]
    raise AssertionError("langchain_pgvec/__init__.py has no __all__")


def test_build_strict(site: Path) -> None:
    assert (site / "index.html").is_file()
    api = (site / "reference" / "store" / "index.html").read_text(encoding="utf-8")
    assert 'id="langchain_pgvec.PGVecStore.similarity_search"' in api
    reference = ""
    for page in (site / "reference").glob("*/index.html"):
        html = page.read_text(encoding="utf-8")
        # docs/griffe_roles.py turns the docstrings' reST into markdown
        assert ":class:" not in html and ":meth:" not in html, page
        assert ".. code-block::" not in html, page
        reference += html
    for name in _public_names():  # every public name has its entry in the API reference
        assert f'id="langchain_pgvec.{name}"' in reference, name


def test_benchmark_page(site: Path) -> None:
    """Each plot and results file the page names is shown, or marked as not generated."""
    source = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    page = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    results = ROOT / "benchmarks" / "results"
    plots = re.findall(r"<!--\s*pgvec-plot:\s*(\S+)", source)
    tables = [n for n in re.findall(r"<!--\s*pgvec-results:\s*(\S+)", source) if n != "*"]
    assert plots and tables
    for name in plots:
        if (results / name).is_file():
            assert f'src="results/{name}"' in page, name
            built = site / "benchmarks" / "results" / name
            assert built.read_bytes() == (results / name).read_bytes()
        else:
            assert f"benchmarks/results/{name}</code> is not in this checkout" in page, name
    for name in tables:
        if not (results / name).is_file():
            assert f"benchmarks/results/{name}</code> is not in this checkout" in page, name
    for path in results.glob("*.md"):
        heading = next(
            (line.lstrip("#").strip() for line in path.read_text().splitlines() if line[:1] == "#"),
            None,
        )
        if heading:
            assert heading.split("`")[0].split(":")[0].strip() in page, path.name
    assert "pgvec-plot:" not in page and "pgvec-results:" not in page


def _hooks() -> ModuleType:
    _require_docs_packages()
    spec = importlib.util.spec_from_file_location("pgvec_docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hook_expands_markers(tmp_path: Path) -> None:
    """What the benchmark page's markers become, with some results present and some not."""
    hooks = _hooks()
    (tmp_path / "here.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "table.md").write_text("# Title\n\n```\n# not a heading\n```\n## Part\n")
    (tmp_path / "extra.md").write_text("# Extra\n")
    markdown = "\n".join(
        [
            "<!-- pgvec-plot: here.png | A plot -->",
            "<!-- pgvec-plot: gone.png | Another -->",
            "<!-- pgvec-results: table.md -->",
            "<!-- pgvec-results: missing.md -->",
            "<!-- pgvec-results: * -->",
        ]
    )
    out = hooks.expand(markdown, tmp_path)
    assert "![A plot](benchmarks/results/here.png)" in out
    assert "`benchmarks/results/gone.png` is not in this checkout" in out
    assert "`benchmarks/results/missing.md` is not in this checkout" in out
    assert "### Title\n\n```\n# not a heading\n```\n#### Part\n" in out
    assert "### Extra" in out  # the '*' marker: the files no other marker names
    assert out.count("### Title") == 1
    assert hooks.expand("<!-- pgvec-results: * -->", tmp_path / "none") == (
        "None besides the ones above.\n"
    )


# ------------------------------------------------------------------------------ the browser


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site over HTTP on 127.0.0.1 (a free port); its base URL."""
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class DevTools:
    """A minimal Chrome DevTools protocol client over one browser websocket."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        try:
            raw = self._ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        call: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session is not None:
            call["sessionId"] = session
        self._ws.send(json.dumps(call))
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            message = self._receive(deadline - time.monotonic())
            if message is None:
                break
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)
        raise TimeoutError(f"no answer to {method} in {SECONDS:.0f}s")

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + SECONDS
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            seen = len(self.events)
            remaining = deadline - time.monotonic()
            message = self._receive(remaining) if remaining > 0 else None
            if message is None:
                raise TimeoutError(f"no {method} in {SECONDS:.0f}s")
            self.events.append(message)

    def drain(self, quiet: float) -> None:
        """Collect events until none has come for ``quiet`` seconds."""
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            message = self._receive(quiet)
            if message is None:
                return
            self.events.append(message)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    """Headless Chromium, listening for DevTools on 127.0.0.1 only."""
    binary = _chromium()
    _require_docs_packages()
    if _find_spec("websockets") is None:
        _unavailable("websockets not installed: pip install -e '.[test]'")
    from websockets.sync.client import connect

    home = tmp_path_factory.mktemp("chromium")
    profile = home / "profile"
    command = [
        binary,
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",  # Chromium picks a free port and writes it down
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--mute-audio",
        "about:blank",
    ]
    with open(home / "stderr.log", "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + SECONDS
        while not (active.is_file() and len(active.read_text().split()) >= 2):
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = (home / "stderr.log").read_text(errors="replace")
                pytest.fail(f"Chromium did not start (exit {process.poll()}):\n{stderr}")
            time.sleep(0.05)
        port, path = active.read_text().split()[:2]
        url = f"ws://127.0.0.1:{port}{path}"
        with connect(url, max_size=None, open_timeout=SECONDS) as ws:
            client = DevTools(ws)
            try:
                yield client
            finally:
                # the browser may close the socket before it answers
                with contextlib.suppress(Exception):
                    client.send("Browser.close")
    finally:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the browser this fixture started
            process.wait(timeout=15)


def _png_drawn(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values of its pixels) of a PNG; raises if not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    position, compressed = 8, b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            compressed += data[position + 8 : position + 8 + length]
        position += 12 + length
    return width, height, len(set(zlib.decompress(compressed)))


_DOM = """(() => {
  const heading = document.querySelector('.md-content h1');
  return {
    title: document.title,
    heading: heading ? heading.textContent.replace(/\\s+/g, ' ').trim() : null,
    navigation: Array.from(document.querySelectorAll('nav.md-nav--primary .md-nav__link'))
      .map(link => link.textContent.replace(/\\s+/g, ' ').trim()),
    navigationShown: (() => {
      const nav = document.querySelector('nav.md-nav--primary');
      return nav !== null && nav.getBoundingClientRect().width > 0;
    })(),
    material: typeof window.document$ !== 'undefined',
    anchor: ANCHOR === null ? true : document.getElementById(ANCHOR) !== null,
    ready: document.readyState,
  };
})()"""


def _problems(events: list[dict[str, Any]], session: str, base: str) -> list[str]:
    """Console errors, uncaught exceptions, failed loads and fetches beyond the site."""
    found = []
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description", "")
            found.append(f"uncaught: {details.get('text')} {description}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            values = [str(arg.get("value", arg.get("description"))) for arg in params["args"]]
            found.append(f"console.{params['type']}: {' '.join(values)}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith((base, "data:", "blob:", "about:")):
                found.append(f"fetch beyond the site: {url}")
        elif method == "Network.responseReceived":
            response = params.get("response", {})
            if response.get("status", 200) >= 400:
                found.append(f"HTTP {response.get('status')}: {response.get('url')}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"load failed: {params.get('errorText')} ({params.get('type')})")
    return found


@pytest.mark.parametrize(("path", "heading", "anchor"), PAGES, ids=["home", "api"])
def test_page_renders(
    browser: DevTools,
    served: str,
    tmp_path: Path,
    path: str,
    heading: str,
    anchor: str | None,
) -> None:
    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
    session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        url = served + path
        navigated = browser.send("Page.navigate", session, url=url)
        assert not navigated.get("errorText"), navigated
        browser.wait_for("Page.loadEventFired", session)
        browser.drain(quiet=0.5)  # late scripts, the search worker, deferred fetches

        expression = _DOM.replace("ANCHOR", json.dumps(anchor))
        evaluated = browser.send(
            "Runtime.evaluate", session, expression=expression, returnByValue=True
        )
        dom = evaluated["result"]["value"]
        assert dom["ready"] == "complete"
        assert "langchain-pgvec" in dom["title"], dom
        assert dom["heading"] is not None and heading in dom["heading"], dom
        assert dom["navigationShown"], "the navigation is not on screen"
        for item in NAVIGATION:
            assert item in dom["navigation"], (item, dom["navigation"])
        assert dom["material"], "Material's script did not run"
        assert dom["anchor"], f"no element #{anchor}"

        shot = browser.send("Page.captureScreenshot", session, format="png")
        data = base64.b64decode(shot["data"])
        (tmp_path / "screenshot.png").write_bytes(data)
        width, height, distinct = _png_drawn(data)
        assert (width, height) == (1280, 900)
        assert distinct >= 16, f"the screenshot looks blank ({distinct} distinct byte values)"

        browser.drain(quiet=0.2)
        assert _problems(browser.events, session, served) == []
    finally:
        browser.send("Target.closeTarget", targetId=target)
