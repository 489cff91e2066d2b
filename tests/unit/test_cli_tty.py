"""``podrunner run`` in a real terminal (tmux): the live status line, then the logs and summary."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def test_status_line_in_a_terminal(tmp_path: Path) -> None:
    """A terminal shows a live 'running' line with elapsed time, erased before the summary."""
    session = f"podrunner-test-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "rc"
    script = "echo first; sleep 2; echo second"
    command = (
        f"{shlex.quote(sys.executable)} -m podrunner run --image x -- sh -c {shlex.quote(script)};"
        f" echo $? > {shlex.quote(str(done))}; sleep 30"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODRUNNER_")}
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "30", command],
        check=True,
        env=env,
        timeout=30,
    )
    try:
        screens: list[str] = []
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            screens.append(_tmux("capture-pane", "-p", "-t", session))
            time.sleep(0.2)
        final = _tmux("capture-pane", "-p", "-t", session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, timeout=30)
    assert done.read_text().strip() == "0"
    live = [s for s in screens if "running" in s and "first" in s]
    assert live, "no screen showed the live 'running' line"
    # The live line carries the elapsed time and replaces itself instead of scrolling.
    assert any("running  1." in s or "running  2." in s for s in live)
    assert max(s.count("running") for s in screens) == 1
    lines = [line for line in final.splitlines() if line.strip()]
    assert lines[0].startswith("podrunner: backend fake")
    # The banner's second line (what a local process does not enforce) may wrap.
    assert lines[1].startswith("podrunner: not enforced on a local process")
    first = lines.index("first")
    assert lines[first : first + 2] == ["first", "second"]
    assert "Succeeded exit 0" in lines[first + 2]
    assert "running" not in final
