"""Stopping runs: SIGINT/SIGTERM/SIGHUP and a closed stdout for the CLI, stop_on_signals for SDKs.

Every test runs a real process on the default fake backend and checks what a user would: the
command's process is gone, nothing is left in the run's temp dir, the exit status and the one
line on stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest
from childsignals import default_stop_signals

import podrunner
from podrunner.signals import Terminated, stop_on_signals

if TYPE_CHECKING:
    from collections.abc import Iterator

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
POLICIES = ["always", "on-success", "never"]
# The container prints its own pid, then stays alive until it is killed.
STAY = ["sh", "-c", "echo $$; exec sleep 300"]


def _env(run_tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODRUNNER_")}
    env.pop("KUBECONFIG", None)
    # The fake's local runtime makes its per-run dirs here: the test sees every one of them.
    env["TMPDIR"] = str(run_tmp)
    return env


@pytest.fixture
def run_tmp() -> Iterator[Path]:
    """The command's TMPDIR: outside pytest's private tmp, so a non-root container can reach it."""
    path = Path(tempfile.mkdtemp(prefix="podrunner-cli-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead; only its parent has not reaped it yet.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def _gone(pid: int) -> bool:
    """Whether ``pid`` is gone, waiting up to 10 s for the kill to land."""
    deadline = time.monotonic() + 10
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)  # do not leave it behind after the failure
            return False
        time.sleep(0.05)
    return True


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _reap_children() -> Iterator[None]:
    """A failed test must not leave a child or its pipes behind for a later test to trip on."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _popen(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=default_stop_signals,
    )
    _STARTED.append(proc)
    return proc


def _first_line(stream: IO[str] | None) -> str:
    assert stream is not None
    return stream.readline().strip()


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_deletes_the_run_whatever_the_policy(
    run_tmp: Path, signum: int, policy: str
) -> None:
    """Each stop signal ends the command process, deletes pod+Secret, says so, exits 128+N."""
    proc = _popen(
        [
            sys.executable, "-m", "podrunner", "run", "--cleanup", policy,
            "--secret-env", "TOKEN=s3cr3t-value", "--image", "x", "--", *STAY,
        ],
        _env(run_tmp),
    )  # fmt: skip
    pid = int(_first_line(proc.stdout))
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert _gone(pid), "the container's process outlived the run"
    assert list(run_tmp.iterdir()) == [], "the run's temp dir was left behind"
    last = err.strip().splitlines()[-1]
    name = signal.Signals(signum).name
    assert last.startswith(f"podrunner: interrupted ({name}); deleted pod default/podrunner-")
    assert last.endswith("-secrets"), last
    assert " and Secret default/" in last
    assert "s3cr3t-value" not in err
    assert "Traceback" not in err


def test_a_second_signal_ends_a_slow_cleanup_at_once(run_tmp: Path) -> None:
    """A second signal while deletes hang: one line naming what may be left, exit 128+N now."""
    script = textwrap.dedent(
        """
        import sys
        import podrunner.cli as cli
        from podrunner.cli import _backend
        from podrunner.backends.fake import FakeCluster
        from podrunner.run import PodRunner

        def make_runner(backend, kubeconfig, context, namespace, **options):
            cluster = FakeCluster(runtime="local")
            cluster.fault(verb="delete", latency=600)  # an API server that stops answering
            return PodRunner(cluster.backend, namespace or "default")

        _backend.make_runner = make_runner
        cli.main(sys.argv[1:], prog_name="podrunner")
        """
    )
    proc = _popen([sys.executable, "-c", script, "run", "--image", "x", "--", *STAY], _env(run_tmp))
    pid = int(_first_line(proc.stdout))
    try:
        proc.send_signal(signal.SIGTERM)
        # Let the cleanup start (ordering only; nothing is timed). Python runs pending signal
        # handlers lowest number first: a SIGINT that arrives before the SIGTERM was handled
        # would be taken as the first, so leave room for a loaded machine.
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)  # far below the 600 s the delete would take
        # The API objects may be left, but the local process group never outlives the CLI.
        local_process_gone = _gone(pid)
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert local_process_gone
    assert proc.returncode == 128 + signal.SIGINT, err
    lines = [line for line in err.splitlines() if "again" in line]
    assert len(lines) == 1
    assert lines[0].startswith("podrunner: SIGINT again: cleanup stopped; may be left: pod ")
    assert "podrunner reap" in lines[0]
    assert "Traceback" not in err


def test_closed_stdout_stops_the_run_quietly(run_tmp: Path) -> None:
    """`podrunner run ... | head -1`: no traceback, the run is deleted, exit 141 like SIGPIPE."""
    proc = _popen(
        [
            sys.executable, "-m", "podrunner", "run", "--image", "x", "--",
            "sh", "-c", "echo $$; while :; do echo tick; sleep 0.1; done",
        ],
        _env(run_tmp),
    )  # fmt: skip
    assert proc.stdout is not None
    pid = int(proc.stdout.readline())
    proc.stdout.close()  # what `head -1` does after its line
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141, err
    assert _gone(pid), "the command kept running after its reader left"
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err
    assert err.strip().splitlines()[-1].startswith("podrunner: stdout closed; deleted pod default/")


def test_closed_stdout_on_json_output_is_quiet(run_tmp: Path) -> None:
    """A reader that leaves before a JSON document is printed gets the same quiet 141."""
    proc = _popen(
        [
            sys.executable, "-m", "podrunner", "run", "-o", "json", "--image", "x", "--",
            "sh", "-c", "seq 1 200000",
        ],
        _env(run_tmp),
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141, err
    assert "Traceback" not in err
    assert "Exception ignored" not in err


# -- the SDK: podrunner.stop_on_signals ----------------------------------------------------------

SDK_SCRIPT = textwrap.dedent(
    """
    import sys
    import podrunner
    from podrunner import PodRunner, PodSpec
    from podrunner.testing import FakeCluster

    cluster = FakeCluster(runtime="local")
    runner = PodRunner(cluster.backend, namespace="default")
    spec = PodSpec(
        image="busybox:1.36",
        command=["sh", "-c", "echo $$; exec sleep 300"],
        secret_env={"TOKEN": "s3cr3t"},
    )
    try:
        with podrunner.stop_on_signals():
            runner.run(spec, on_log=lambda line: print(line, flush=True))
    finally:
        left = [
            (kind, obj["metadata"]["name"])
            for kind in ("Pod", "Secret")
            for obj in cluster.backend.list(kind, "default").items
        ]
        print(f"left: {left}", file=sys.stderr, flush=True)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sdk_script_stopped_by_a_signal_deletes_its_pod(run_tmp: Path, signum: int) -> None:
    """An SDK script under stop_on_signals(): kill -TERM/-HUP deletes its pod, exits 128+N."""
    proc = _popen([sys.executable, "-c", SDK_SCRIPT], _env(run_tmp))
    pid = int(_first_line(proc.stdout))
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "left: []" in err
    assert _gone(pid)
    assert "Traceback" not in err


def test_stop_on_signals_raises_terminated_and_restores_handlers() -> None:
    """Inside the block SIGTERM raises Terminated(143); after it the old handler is back."""
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as info, stop_on_signals():
        signal.raise_signal(signal.SIGTERM)
    assert info.value.signum == signal.SIGTERM
    assert info.value.code == 143
    assert str(info.value) == "stopped by SIGTERM"
    assert not isinstance(info.value, Exception)  # `except Exception` does not swallow it
    assert signal.getsignal(signal.SIGTERM) is before
    assert podrunner.Terminated is Terminated
    assert podrunner.stop_on_signals is stop_on_signals


def test_stop_on_signals_leaves_ignored_signals_ignored() -> None:
    """Under `nohup` SIGHUP is ignored: stop_on_signals keeps it that way."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_stop_on_signals_needs_the_main_thread() -> None:
    """Only the main thread gets Python signal handlers: elsewhere it says so."""
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with stop_on_signals():
                pass
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert "main thread" in str(errors[0])


STANDIN = Path(__file__).resolve().parents[1] / "fixtures" / "claude" / "claude"


@pytest.mark.skipif(not STANDIN.exists(), reason="stand-in claude CLI missing")
def test_claude_stopped_by_sigterm_deletes_its_run(run_tmp: Path) -> None:
    """`podrunner claude` under SIGTERM: its pod's process and temp dir go, one line, exit 143."""
    env = {**_env(run_tmp), "ANTHROPIC_API_KEY": "sk-test"}
    proc = _popen(
        [
            sys.executable, "-m", "podrunner", "claude", "#slow hello",
            "--image", "example.com/claude:2", "--claude-path", str(STANDIN),
        ],
        env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    # The stand-in's process shows up in the run's temp dir once the pod runs.
    while not any(run_tmp.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # ordering only: let the container start
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == (
        "podrunner: interrupted (SIGTERM); deleted the run's pod and the Secret and ConfigMap "
        "it created"
    )
    assert list(run_tmp.iterdir()) == []
    assert "Traceback" not in err


def test_a_stopped_json_run_prints_a_json_error(run_tmp: Path) -> None:
    """-o json and SIGTERM: the document says what stopped the run and what was deleted."""
    proc = _popen(
        [sys.executable, "-m", "podrunner", "run", "-o", "json", "--image", "x", "--", *STAY],
        _env(run_tmp),
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # wait for the run to be under way
        if "running" in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143
    doc = json.loads(out)
    assert doc["ok"] is False
    assert doc["error"]["type"] == "Terminated"
    assert doc["error"]["message"].startswith("interrupted (SIGTERM); deleted pod default/")
