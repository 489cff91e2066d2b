"""The Python blocks of README.md and docs/*.md, and where each one runs.

Every ```` ```python ```` block runs somewhere:

- no marker: on the fake cluster in the unit tier, top to bottom in one namespace per page;
- a first line ``# file: test_NAME.py``: a test file, run by pytest (pytester) in a project with
  no conftest, on the fake in the unit tier and with ``--podrunner-backend=kwok`` in
  ``nox -s integration``;
- ``<!-- doc-run: kwok -->`` on the line before: needs a real API server; runs in
  ``nox -s integration`` on the local kwok control plane (tests/integration/test_docs_kwok.py);
- ``<!-- doc-run: agent-sdk -->``: needs the ``agent-sdk`` extra (``claude_agent_sdk``); runs
  after the page's plain blocks, on the fake in the unit tier when the SDK is installed
  (``nox -s agent_sdk``), from the repository's root (it may use the stand-in CLI);
- ``<!-- doc-run: none (why) -->``: cannot run anywhere (the reason is required); counted, and
  the unit tier still checks that it compiles and uses no undefined name.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
MARKER = re.compile(r"<!--\s*doc-run:\s*(kwok|none|agent-sdk)\b\s*(.*?)\s*-->")
TEST_FILE = re.compile(r"# file: (test_\w+)\.py\n")
WHERE = ("fake", "test-file", "kwok", "agent-sdk", "none")


@dataclass(frozen=True)
class Block:
    """One python block: its page, line, code and where it runs (one of :data:`WHERE`)."""

    page: Path
    line: int
    code: str
    where: str
    reason: str = ""

    @property
    def label(self) -> str:
        """``page.md:line`` for test ids and messages."""
        return f"{self.page.name}:{self.line}"

    @property
    def test_module(self) -> str:
        """The module name of a ``# file:`` block."""
        match = TEST_FILE.match(self.code)
        assert match, self.label
        return match.group(1)


def blocks(page: Path) -> list[Block]:
    """The python blocks of one page, in order."""
    text = page.read_text(encoding="utf-8")
    out = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        line = text.count("\n", 0, match.start()) + 1
        code = match.group(1)
        marker = MARKER.fullmatch(before.strip())
        if marker:
            where, reason = marker.group(1), marker.group(2)
        elif TEST_FILE.match(code):
            where, reason = "test-file", ""
        else:
            where, reason = "fake", ""
        out.append(Block(page, line, code, where, reason))
    return out


def all_blocks() -> list[Block]:
    """Every python block of README.md and docs/*.md."""
    return [block for page in PAGES for block in blocks(page)]


def undefined_names(code: str, known: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Names the code reads but never binds (nor are builtins or in ``known``), sorted.

    Scopes are flattened, so a name bound anywhere in the block counts as bound: this finds
    the forgotten import or constant, which is what breaks a copied example.
    """
    tree = ast.parse(code)
    bound = set(known) | set(dir(builtins))
    loaded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return sorted(loaded - bound)


def bound_names(code: str) -> set[str]:
    """Top-level names a block binds (what later blocks of the page may use)."""
    tree = ast.parse(code)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names
