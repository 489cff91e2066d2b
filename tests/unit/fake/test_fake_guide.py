"""The Python examples of docs/fake-cluster.md run and their assertions hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "fake-cluster.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_guide_has_examples() -> None:
    """The guide shows scripting, faults, the clock and inspection in code."""
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_guide_example_runs(index: int) -> None:
    """Each python block of the guide runs on its own (with the guide's first import)."""
    namespace: dict[str, object] = {}
    exec(compile("from podrunner.testing import FakeCluster\n", str(DOC), "exec"), namespace)
    exec(compile(BLOCKS[index], f"{DOC}#block{index}", "exec"), namespace)
