"""Commands run in a container through the API (``pods/exec``).

A request is checked under the cluster's lock as the API server and kubelet check it (a
command, a valid container, a pod not completed, a running container); it then runs without
the lock, by the first of: an exec handler of a scripting rule, the local runtime (a process
next to the container's), or a few builtins every image has (``echo``, ``cat``, ``true``,
``false``, and ``sh -c``, which runs the machine's ``/bin/sh`` as kwok's local exec does).
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from podrunner.backends.base import ExecResult
from podrunner.backends.fake.execstream import CannedExecStream, spawn, temp_dir_cleanup
from podrunner.backends.fake.podsim import container_name
from podrunner.backends.fake.scripting import ExecRequest, coerce_exec_result
from podrunner.errors import BadRequest

if TYPE_CHECKING:
    from podrunner.backends.base import ExecStream
    from podrunner.backends.fake.execstream import Busy
    from podrunner.backends.fake.kubelet import Kubelet
    from podrunner.backends.fake.scripting import Rule

__all__ = ["prepare_exec", "prepare_open_exec"]


def _checked(
    kubelet: Kubelet, pod: dict[str, Any], container: str | None, argv: Sequence[str]
) -> tuple[list[str], str, Any, Any]:
    """Check an exec request as the API server and kubelet do: ``(argv, container, sim, c)``."""
    if isinstance(argv, (str, bytes)) or not argv:
        raise BadRequest("you must specify at least one command for the container")
    args = [str(a) for a in argv]
    cname = container_name(pod, container)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise BadRequest(
            f"cannot exec into a container in a completed pod; current phase is {phase}"
        )
    sim = kubelet.pods.get(pod)
    c = None if sim is None else sim.container(cname)
    if sim is None or c is None or not c.running():
        raise BadRequest(f'unable to upgrade connection: container not found ("{cname}")')
    return args, cname, sim, c


def prepare_exec(
    kubelet: Kubelet,
    pod: dict[str, Any],
    container: str | None,
    argv: Sequence[str],
    *,
    stdin: bytes | None,
    timeout: float | None,
) -> Callable[[], ExecResult]:
    """Check an exec request on a stored pod (lock held); return what runs it (unlocked).

    Raises:
        BadRequest: No command, no such container, a completed pod or a container that is
            not running.
    """
    args, cname, sim, c = _checked(kubelet, pod, container, argv)
    handler = _handler(kubelet.rules, pod, args)
    if handler is not None:
        meta = pod["metadata"]
        request = ExecRequest(meta["namespace"], meta["name"], cname, args, stdin)
        return lambda: coerce_exec_result(handler(request))
    if kubelet.runtime is not None:
        return partial(kubelet.runtime.exec, sim, c, args, stdin=stdin, timeout=timeout)
    return partial(_builtin_exec, args, stdin)


def prepare_open_exec(
    kubelet: Kubelet,
    pod: dict[str, Any],
    container: str | None,
    argv: Sequence[str],
    *,
    stdin: bool,
    busy: Busy,
) -> Callable[[], ExecStream]:
    """:func:`prepare_exec` for a streamed exec: what opens the stream (unlocked).

    A handler gets what was written until ``close_stdin``; the local runtime and the ``sh -c``
    and ``cat`` builtins run a process whose pipes are streamed; other builtins answer at once.
    """
    args, cname, sim, c = _checked(kubelet, pod, container, argv)
    handler = _handler(kubelet.rules, pod, args)
    if handler is not None:
        meta = pod["metadata"]

        def answer(data: bytes | None) -> ExecResult:
            request = ExecRequest(meta["namespace"], meta["name"], cname, args, data)
            return coerce_exec_result(handler(request))

        return lambda: CannedExecStream(answer, stdin=stdin)
    if kubelet.runtime is not None:
        return partial(kubelet.runtime.open_exec, sim, c, args, stdin=stdin, busy=busy)
    return partial(_builtin_open_exec, args, stdin, busy)


def _builtin_open_exec(argv: list[str], stdin: bool, busy: Busy) -> ExecStream:
    """The builtins, streamed: ``sh -c`` and ``cat`` run the machine's, as kwok does."""
    cmd = argv[0].rsplit("/", 1)[-1]
    shell = cmd in ("sh", "bash") and len(argv) >= 3 and argv[1] == "-c"
    if not shell and not (cmd == "cat" and len(argv) == 1):
        return CannedExecStream(partial(_builtin_exec, argv), stdin=stdin, reads_stdin=False)
    import tempfile

    tmp = tempfile.mkdtemp(prefix="podrunner-exec-")
    local = ["/bin/sh", *argv[1:]] if shell else ["cat"]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp}
    try:
        return spawn(local, busy, stdin=stdin, cleanup=temp_dir_cleanup(tmp), cwd=tmp, env=env)
    except BaseException:
        temp_dir_cleanup(tmp)()
        raise


def _handler(rules: list[Rule], pod: dict[str, Any], argv: list[str]) -> Any:
    """The exec handler of the newest rule that matches the pod and the command, if any."""
    joined = shlex.join(argv)
    for rule in reversed(rules):
        if not rule.exec_handlers or not rule.matches(pod):
            continue
        for pattern, fn in reversed(rule.exec_handlers):
            if pattern is None or fnmatch.fnmatchcase(joined, pattern):
                return fn
    return None


def _builtin_exec(argv: list[str], stdin: bytes | None) -> ExecResult:
    """A few commands every image has, so simple probes work without a handler."""
    cmd = argv[0].rsplit("/", 1)[-1]
    if cmd == "echo":
        return ExecResult(0, (" ".join(argv[1:]) + "\n").encode(), b"")
    if cmd == "cat" and len(argv) == 1:
        return ExecResult(0, stdin or b"", b"")
    if cmd == "true":
        return ExecResult(0, b"", b"")
    if cmd == "false":
        return ExecResult(1, b"", b"")
    if cmd in ("sh", "bash") and len(argv) >= 3 and argv[1] == "-c":
        return _shell_exec(argv, stdin)
    return ExecResult(
        127,
        b"",
        (
            "OCI runtime exec failed: exec failed: unable to start container process: "
            f'exec: "{argv[0]}": executable file not found in $PATH: unknown\n'
        ).encode(),
    )


def _shell_exec(argv: list[str], stdin: bytes | None) -> ExecResult:
    """Run ``sh -c SCRIPT`` with the machine's /bin/sh, as kwok's local exec does.

    It runs in an empty temporary directory with a minimal environment, never through a
    shell string built here: the argv goes to the process as it is.
    """
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="podrunner-exec-") as tmp:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp}
        try:
            proc = subprocess.run(
                ["/bin/sh", *argv[1:]],
                input=stdin or b"",
                capture_output=True,
                cwd=tmp,
                env=env,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return ExecResult(137, exc.stdout or b"", exc.stderr or b"")
    return ExecResult(proc.returncode, proc.stdout, proc.stderr)
