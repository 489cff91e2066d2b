"""The Python examples of the quickstart, running and pytest guides run, and their asserts hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
TEST_FILE = re.compile(r"# file: (test_\w+\.py)\n")


def _blocks(name: str) -> list[str]:
    return BLOCK.findall((DOCS / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["quickstart.md", "running.md", "pytest.md"])
def test_guide_examples_run(name: str) -> None:
    """Every plain ```python block of the guide runs, in order, in one namespace."""
    blocks = [b for b in _blocks(name) if not TEST_FILE.match(b)]
    assert blocks, f"{name} has no python examples"
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(DOCS / name), "exec"), namespace)


def test_pytest_guide_test_files_pass(pytester: pytest.Pytester) -> None:
    """The test files shown in the pytest guide pass in a project with no conftest."""
    files = {}
    for block in _blocks("pytest.md"):
        match = TEST_FILE.match(block)
        if match:
            files[match.group(1).removesuffix(".py")] = block
    assert len(files) >= 2
    pytester.makepyfile(**files)
    result = pytester.runpytest_subprocess("-p", "no:kmock", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
