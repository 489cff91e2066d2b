"""``podrunner run``, ``reap`` and ``claude`` as users run them: subprocesses on the fake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from childsignals import default_stop_signals

STANDIN = Path(__file__).resolve().parents[1] / "fixtures" / "claude" / "claude"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODRUNNER_")}
    env.pop("KUBECONFIG", None)
    return env


def podrunner(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m podrunner ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "podrunner", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        check=False,
        cwd=cwd,
    )


def test_run_prints_output_and_exits_zero() -> None:
    """The quickstart command prints hi, says which backend, and exits 0."""
    # Baseline keeps the caller's user: the restricted default would run the command as uid
    # 65532, which cannot reach an interpreter under a private home (/root on the test VM).
    proc = podrunner(
        "run", "--image", "python:3.11", "--security", "baseline", "--",
        sys.executable, "-c", "print('hi')",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hi\n"
    first = proc.stderr.splitlines()[0]
    assert first.startswith("podrunner: backend fake")
    assert "namespace default" in first
    assert "running" in proc.stderr
    assert "Succeeded exit 0" in proc.stderr


def test_exit_code_is_propagated() -> None:
    """The container's exit code is the command's."""
    proc = podrunner("run", "--image", "busybox:1.36", "--", "sh", "-c", "exit 3")
    assert proc.returncode == 3
    assert "Failed (Error) exit 3" in proc.stderr


def test_plain_state_lines_when_not_a_terminal() -> None:
    """Without a terminal the states are plain lines, in lifecycle order."""
    proc = podrunner("run", "--image", "x", "--", "true")
    words = [line.split("] ", 1)[1] for line in proc.stderr.splitlines() if "s] " in line]
    assert words[0] == "pending"
    assert words.index("running") < len(words) - 1
    assert "\x1b[" not in proc.stderr


def test_env_and_secret_env_reach_the_command() -> None:
    """--env and --secret-env values are in the container's environment."""
    proc = podrunner(
        "run", "--image", "x", "--env", "A=1", "--secret-env", "TOKEN=s3", "--",
        "sh", "-c", 'echo "$A $TOKEN"',
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "1 s3\n"


def test_json_output_is_the_whole_result() -> None:
    """--output json prints only the result document on stdout, logs included."""
    proc = podrunner("run", "-o", "json", "--image", "x", "--", "sh", "-c", "echo out; exit 4")
    assert proc.returncode == 4
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 4
    assert doc["phase"] == "Failed"
    assert doc["reason"] == "Error"
    assert doc["logs"] == "out\n"
    assert doc["pod_name"].startswith("podrunner-")


def test_spec_error_is_one_line_and_exit_2() -> None:
    """A bad label is one clear line on stderr, exit status 2, nothing on stdout."""
    proc = podrunner("run", "--image", "x", "--label", "bad_=x", "--", "true")
    assert proc.returncode == 2
    assert proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("podrunner: error:")]
    assert len(errors) == 1
    assert "labels" in errors[0]
    assert "Traceback" not in proc.stderr


def test_config_error_details_with_verbose() -> None:
    """A missing kubeconfig is one line; --verbose adds the traceback."""
    args = ["run", "--backend", "kubernetes", "--kubeconfig", "/nonexistent/kc", "--image", "x"]
    proc = podrunner(*args, "--", "true")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "podrunner: error: kubeconfig /nonexistent/kc: no such file"
    verbose = podrunner(*args, "--verbose", "--", "true")
    assert verbose.returncode == 2
    assert "Traceback" in verbose.stderr


def test_backend_from_environment() -> None:
    """PODRUNNER_BACKEND picks the backend; an unknown one is a usage error."""
    env = {**_env(), "PODRUNNER_BACKEND": "nope"}
    proc = subprocess.run(
        [sys.executable, "-m", "podrunner", "run", "--image", "x", "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "PODRUNNER_BACKEND" in proc.stderr or "--backend" in proc.stderr


def test_ctrl_c_deletes_the_run_and_exits_130(tmp_path: Path) -> None:
    """SIGINT during a run stops the container, deletes the pod and exits 130."""
    marker = tmp_path / "alive"
    proc = subprocess.Popen(
        [
            # Baseline keeps the caller's user, who can write to tmp_path (uid 65532 cannot).
            sys.executable, "-m", "podrunner", "run", "--image", "x", "--security", "baseline",
            "--", "sh", "-c",
            f"touch {marker}; echo started; while true; do touch {marker}; sleep 0.1; done",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        preexec_fn=default_stop_signals,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline() == "started\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in err
    # The container process is gone: the marker stops being touched.
    time.sleep(0.3)
    before = marker.stat().st_mtime
    time.sleep(0.5)
    assert marker.stat().st_mtime == before


def test_reap_on_the_fake() -> None:
    """Reap runs against the chosen backend and reports what it did."""
    proc = podrunner("reap", "--older-than", "0")
    assert proc.returncode == 0, proc.stderr
    assert "reaped 0, kept 0" in proc.stderr


def test_version_and_help() -> None:
    """The command group lists run, claude, manifest, reap and version."""
    proc = podrunner("--help")
    for command in ("run", "claude", "manifest", "reap", "version"):
        assert command in proc.stdout
    assert podrunner("version").stdout.startswith("podrunner ")


@pytest.mark.skipif(not STANDIN.exists(), reason="stand-in claude CLI missing")
def test_claude_prints_answer_cost_and_session(tmp_path: Path) -> None:
    """``podrunner claude``: the answer on stdout, cost and session id on stderr; json has all."""
    args = ["claude", "hello", "--image", "example.com/claude:2", "--claude-path", str(STANDIN)]
    proc = podrunner(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "hello" in proc.stdout
    assert "cost: $" in proc.stderr
    assert "session: " in proc.stderr
    doc = json.loads(podrunner(*args, "-o", "json", cwd=tmp_path).stdout)
    assert doc["session_id"]
    budget = podrunner("claude", "#budget x", *args[2:], "--max-budget-usd", "0.01")
    assert budget.returncode == 3


def test_fake_banner_names_what_a_local_process_does_not_enforce() -> None:
    """The local runtime is no sandbox: the second line says which settings it cannot honour."""
    proc = podrunner("run", "--image", "busybox:1.36", "--", "true")
    assert proc.returncode == 0, proc.stderr
    second = proc.stderr.splitlines()[1]
    assert second.startswith("podrunner: not enforced on a local process: image")
    assert "seccompProfile" in second


def test_a_program_the_pod_user_cannot_reach_gets_a_hint(tmp_path: Path) -> None:
    """As root, the default uid 65532 cannot run a program under a private directory: say why."""
    if os.geteuid() != 0:
        pytest.skip("only root switches to the pod's uid")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    tool = private / "tool"
    tool.write_text("#!/bin/sh\necho never\n")
    tool.chmod(0o755)
    proc = podrunner("run", "--image", "busybox:1.36", "--", str(tool))
    assert proc.returncode != 0
    assert "runs as uid 65532" in proc.stdout + proc.stderr
    assert "--security baseline" in proc.stdout + proc.stderr
