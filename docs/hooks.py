"""MkDocs hooks of the documentation site (``hooks:`` in ``mkdocs.yml``).

The benchmark page shows what the benchmark scripts wrote to ``benchmarks/results/``,
outside ``docs/``, so the site is never a stale copy of them:

- every ``benchmarks/results/*.png`` is added to the site's files, at
  ``benchmarks/results/<name>.png``;
- in a page, ``<!-- pgvec-plot: NAME.png | caption -->`` becomes that image when the
  file exists, and a note saying the plot has not been generated yet when it does
  not: a missing plot never fails ``mkdocs build --strict``, and the page says which
  file is missing and who writes it;
- ``<!-- pgvec-results: NAME.md -->`` becomes the text of ``benchmarks/results/NAME.md``
  (its headings moved two levels down, so they sit under the page's sections), or the
  same kind of note; ``<!-- pgvec-results: * -->`` stands for every results file that
  no other marker of the page names.

The API reference documents every name of ``langchain_pgvec.__all__``: a public name
that no page of ``docs/reference/`` names in a ``::: langchain_pgvec.NAME`` line gets an
entry on a generated page, ``reference/more.md`` ("More", last in the reference's
navigation), which exists only while there is such a name.

``mkdocs serve`` also watches ``benchmarks/results/``.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.pgvec")

#: where the benchmark scripts write their tables and plots, from the repository root
RESULTS = Path("benchmarks") / "results"
#: where the plots are in the built site
SITE_RESULTS = "benchmarks/results"
#: how far the headings of an included results file move down
HEADING_SHIFT = 2
PACKAGE = "langchain_pgvec"
#: the generated reference page of the public names no other page documents
MORE_PAGE = "reference/more.md"
REFERENCE_SECTION = "API reference"
_DOCUMENTED = re.compile(rf"^:::\s+{PACKAGE}\.(\w+)\s*$", re.M)

_PLOT = re.compile(
    r"^<!--\s*pgvec-plot:\s*(?P<name>[^|\s]+)\s*\|\s*(?P<caption>.*?)\s*-->\s*$", re.M
)
_RESULTS = re.compile(r"^<!--\s*pgvec-results:\s*(?P<name>\S+)\s*-->\s*$", re.M)
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})(\s)")


def results_dir(config: MkDocsConfig) -> Path:
    """The ``benchmarks/results`` folder beside ``mkdocs.yml``."""
    root = Path(config.config_file_path).resolve().parent
    return root / RESULTS


def missing_note(name: str) -> str:
    """The admonition shown in place of a results file or plot that does not exist."""
    return (
        '!!! note "Not generated yet"\n'
        f"    `{RESULTS.as_posix()}/{name}` is not in this checkout. The benchmark that\n"
        "    measures it writes it (see `benchmarks/README.md`), and this page shows it\n"
        "    from the next build on.\n"
    )


def shift_headings(text: str, levels: int = HEADING_SHIFT) -> str:
    """Move the markdown ATX headings of ``text`` down ``levels`` levels (at most ``######``).

    Lines inside fenced code blocks are left alone.
    """
    out = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            match = _HEADING.match(line)
            if match:
                depth = min(6, len(match.group(1)) + levels)
                line = "#" * depth + line[len(match.group(1)) :]
        out.append(line)
    return "\n".join(out) + "\n"


def expand(markdown: str, results: Path) -> str:
    """Replace the ``pgvec-plot`` and ``pgvec-results`` markers of a page.

    Args:
        markdown: The page's markdown.
        results: The folder holding the results files and plots.

    Returns:
        The markdown with every marker replaced by an image, a results file's text, or
        a note that the file is missing.
    """

    def plot(match: re.Match[str]) -> str:
        name, caption = match.group("name"), match.group("caption")
        if (results / name).is_file():
            return f"![{caption}]({SITE_RESULTS}/{name})\n"
        log.info("benchmark plot %s is not generated yet; the page says so", name)
        return missing_note(name)

    named = {m.group("name") for m in _RESULTS.finditer(markdown)} - {"*"}

    def included(name: str) -> str:
        path = results / name
        if not path.is_file():
            log.info("benchmark results %s are not generated yet; the page says so", name)
            return missing_note(name)
        return shift_headings(path.read_text(encoding="utf-8"))

    def table(match: re.Match[str]) -> str:
        name = match.group("name")
        if name != "*":
            return included(name)
        others = sorted(p.name for p in results.glob("*.md") if p.name not in named)
        if not others:
            return "None besides the ones above.\n"
        return "\n".join(included(other) for other in others)

    return _RESULTS.sub(table, _PLOT.sub(plot, markdown))


def public_names(root: Path) -> list[str]:
    """The names in ``langchain_pgvec/__init__.py``'s ``__all__``, read without importing it."""
    tree = ast.parse((root / PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return [str(name) for name in ast.literal_eval(node.value)]
    return []


def undocumented(root: Path, docs_dir: Path) -> list[str]:
    """The public names that no page of ``docs/reference`` documents, in ``__all__`` order."""
    documented: set[str] = set()
    for page in sorted((docs_dir / "reference").glob("*.md")):
        if page.name != Path(MORE_PAGE).name:
            documented.update(_DOCUMENTED.findall(page.read_text(encoding="utf-8")))
    return [name for name in public_names(root) if name not in documented]


def more_page(names: list[str]) -> str:
    """The markdown of the generated reference page for ``names``."""
    blocks = "\n\n".join(f"::: {PACKAGE}.{name}" for name in names)
    return (
        "# More\n\nPublic names of `langchain_pgvec` that the other pages of this reference "
        f"do not document.\n\n{blocks}\n"
    )


def _undocumented(config: MkDocsConfig) -> list[str]:
    root = Path(config.config_file_path).resolve().parent
    return undocumented(root, Path(config.docs_dir))


# ------------------------------------------------------------------------ mkdocs hooks


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Put the generated reference page in the navigation, when it has names to show."""
    if _undocumented(config):
        for entry in config.nav or []:
            if isinstance(entry, dict) and isinstance(entry.get(REFERENCE_SECTION), list):
                entry[REFERENCE_SECTION].append({"More": MORE_PAGE})
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add every plot of ``benchmarks/results``, and the generated reference page."""
    for path in sorted(results_dir(config).glob("*.png")):
        uri = f"{SITE_RESULTS}/{path.name}"
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    names = _undocumented(config)
    if names:
        log.info("API reference: %s on the generated page %s", ", ".join(names), MORE_PAGE)
        files.append(File.generated(config, MORE_PAGE, content=more_page(names)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Expand the benchmark markers of a page."""
    if "pgvec-plot:" not in markdown and "pgvec-results:" not in markdown:
        return markdown
    return expand(markdown, results_dir(config))


def on_serve(server: Any, config: MkDocsConfig, builder: Any) -> Any:
    """Rebuild when a benchmark writes new results while ``mkdocs serve`` runs."""
    results = results_dir(config)
    if results.is_dir():
        server.watch(str(results))
    return server
