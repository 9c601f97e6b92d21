"""A Griffe extension that turns the reST left in the package's docstrings into markdown.

The docstrings are Google style, and some of them use two reST forms that markdown
would print as they are:

- roles (``:class:`DistanceStrategy```, ``:meth:`create_index```, ``:func:`...```):
  each becomes inline code, linked to its entry in the API reference (a public name of
  ``langchain_pgvec``, or a member of the class the docstring belongs to) through an
  optional cross-reference: a target the reference does not render stays plain code,
  and never fails ``mkdocs build --strict``;
- ``.. code-block:: LANG`` directives: each becomes a fenced code block.

The source files are not changed; only what the API reference renders.
"""

from __future__ import annotations

import html
import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|mod|data|obj|const):`(?P<target>[^`]+)`")
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. code-block::[ \t]*(?P<lang>[\w+-]*)[ \t]*$")
PACKAGE = "langchain_pgvec"


def fence_code_blocks(text: str) -> str:
    """Replace each ``.. code-block:: LANG`` directive and its indented body by a fence."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = match.group("indent")
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        body: list[str] = []
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > len(indent)
        ):
            body.append(lines[j])
            j += 1
        while body and not body[-1].strip():
            body.pop()
        code = textwrap.dedent("\n".join(body)).split("\n")
        out.append(f"{indent}```{match.group('lang')}")
        out.extend(f"{indent}{line}" if line else "" for line in code)
        out.append(f"{indent}```")
        if j < len(lines):
            out.append("")
        i = j
    return "\n".join(out)


class RolesToMarkdown(griffe.Extension):
    """Rewrite reST roles and code-block directives of the package's docstrings."""

    def __init__(self) -> None:
        super().__init__()
        self._done: set[int] = set()

    # griffe names the hook that sees the whole loaded package differently by version
    def on_package_loaded(self, *, pkg: Any, **kwargs: Any) -> None:
        """Rewrite every docstring of the package, once it is loaded."""
        self._rewrite(pkg)

    def on_package(self, *, pkg: Any, **kwargs: Any) -> None:
        """Rewrite every docstring of the package, once it is loaded."""
        self._rewrite(pkg)

    def _rewrite(self, pkg: Any) -> None:
        if pkg.path != PACKAGE:
            return
        exports: dict[str, Any] = {}  # public name -> the object it names
        public: dict[str, str] = {}  # canonical path -> public path
        for name in getattr(pkg, "exports", None) or ():
            member = pkg.members.get(str(name))
            try:
                target = member.final_target if member is not None and member.is_alias else member
            except griffe.AliasResolutionError:
                continue
            if target is not None:
                exports[str(name)] = target
                public[target.path] = f"{PACKAGE}.{name}"
        self._walk(pkg, exports, public)

    def _walk(self, obj: Any, exports: dict[str, Any], public: dict[str, str]) -> None:
        if obj.is_alias or id(obj) in self._done:
            return
        self._done.add(id(obj))
        if obj.docstring is not None:
            # the class or module a bare name is looked up in
            context = obj if obj.is_class or obj.is_module else obj.parent
            value = fence_code_blocks(obj.docstring.value)
            obj.docstring.value = _ROLE.sub(
                lambda m: self._link(m.group("target"), context, exports, public), value
            )
        for member in list(obj.members.values()):
            self._walk(member, exports, public)

    @staticmethod
    def _link(target: str, context: Any, exports: dict[str, Any], public: dict[str, str]) -> str:
        shown = target
        if target.startswith("~"):
            target = target[1:]
            shown = target.rsplit(".", 1)[-1]
        if target.startswith("."):  # relative to the package: ._engine.Step
            target = f"{PACKAGE}{target}"
        short = target[len(PACKAGE) + 1 :] if target.startswith(f"{PACKAGE}.") else target
        parts = short.split(".")
        if parts[0] in exports:
            identifier = ".".join([PACKAGE, *parts])
        elif len(parts) == 1 and context is not None:
            identifier = f"{public.get(context.path, context.path)}.{parts[0]}"
        else:
            identifier = target
        # optional: a target the reference does not render stays plain code, no warning
        code = f"<code>{html.escape(shown)}</code>"
        return f'<autoref identifier="{html.escape(identifier)}" optional>{code}</autoref>'
