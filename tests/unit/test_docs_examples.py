"""Every Python block of README.md and docs/*.md runs, and its asserts hold (see docblocks.py).

Blocks for the fake run here; test files run here with pytest on the fake; blocks that need a
real API server run in ``nox -s integration`` on kwok (tests/integration/test_docs_kwok.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from docblocks import PAGES, ROOT, Block, all_blocks, blocks, bound_names, undefined_names

pytest_plugins = ["pytester"]

BLOCKS = all_blocks()
FAKE_PAGES = [page for page in PAGES if any(b.where == "fake" for b in blocks(page))]
SDK_PAGES = [page for page in PAGES if any(b.where == "agent-sdk" for b in blocks(page))]
TEST_FILE_PAGES = [page for page in PAGES if any(b.where == "test-file" for b in blocks(page))]
# What the counts must stay under: a page that cannot run is a page that can rot.
NOT_RUNNABLE_SHARE = 0.10


def _run_page(page_blocks: list[Block]) -> None:
    namespace: dict[str, object] = {}
    for block in page_blocks:
        exec(compile(block.code, block.label, "exec"), namespace)


@pytest.mark.parametrize("page", FAKE_PAGES, ids=lambda p: p.name)
def test_page_examples_run_on_the_fake(page: Path) -> None:
    """The page's plain blocks run in order, in one namespace, on the fake cluster."""
    _run_page([b for b in blocks(page) if b.where == "fake"])


@pytest.mark.parametrize("page", SDK_PAGES, ids=lambda p: p.name)
def test_page_agent_sdk_examples_run_on_the_fake(
    page: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the SDK installed, the page's plain then agent-sdk blocks run, from the root."""
    pytest.importorskip(
        "claude_agent_sdk",
        reason="claude-agent-sdk is not installed: pip install 'podrunner[agent-sdk]'",
    )
    monkeypatch.chdir(ROOT)
    _run_page([b for b in blocks(page) if b.where in ("fake", "agent-sdk")])


@pytest.mark.parametrize("page", TEST_FILE_PAGES, ids=lambda p: p.name)
def test_page_test_files_pass_on_the_fake(page: Path, pytester: pytest.Pytester) -> None:
    """The page's ``# file: test_*.py`` blocks pass with pytest in a project with no conftest."""
    files = {b.test_module: b.code for b in blocks(page) if b.where == "test-file"}
    pytester.makepyfile(**files)
    result = pytester.runpytest_subprocess("-p", "no:kmock", "-p", "no:cacheprovider")
    tests = sum(
        code.count("\ndef test_") + code.count("\nasync def test_") for code in files.values()
    )
    result.assert_outcomes(passed=tests)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.label)
def test_block_uses_no_undefined_name(block: Block) -> None:
    """Each block reads no name that it, or an earlier plain block of its page, never binds.

    Blocks run on kwok or never are checked here too, so a copied example works.
    """
    page_blocks = blocks(block.page)
    known: set[str] = set()
    if block.where in ("fake", "agent-sdk", "none"):
        for earlier in page_blocks:
            if earlier.line >= block.line:
                break
            if earlier.where == "fake":
                known |= bound_names(earlier.code)
    assert undefined_names(block.code, known) == []


def test_runnable_share_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """Fewer than 10% of the blocks are marked not runnable, each with a reason; counts printed."""
    counts = {
        where: sum(b.where == where for b in BLOCKS)
        for where in ("fake", "test-file", "kwok", "agent-sdk", "none")
    }
    with capsys.disabled():
        print(f"\ndoc python blocks: {len(BLOCKS)} total, {counts}")
    assert len(BLOCKS) >= 30
    assert all(b.reason for b in BLOCKS if b.where == "none")
    assert counts["none"] < NOT_RUNNABLE_SHARE * len(BLOCKS)
