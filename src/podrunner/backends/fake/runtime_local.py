"""The local runtime: a pod's container command runs as a process on this machine.

This is what the CLI uses when no cluster is configured, and what tests use to run real
commands without Kubernetes. The image is ignored: the command must exist locally.

**Files.** Each pod gets a private directory with its volumes; paths in the command, its
environment and its working directory that name a mount are mapped there (see
:mod:`~podrunner.backends.fake.localfiles`). The directory is removed when the pod goes, when
the cluster is closed, and at interpreter exit, whatever ended the run.

**Processes.** The command runs in its own session and process group. When the main process
exits, the rest of its group is killed, as a pod's other processes end with its container;
deletion sends SIGTERM to the whole group, then SIGKILL after the grace period; cleanup and
interpreter exit send SIGKILL to every group still running.

**Security.** What a local process can honour is enforced: ``runAsUser``/``runAsGroup``,
``fsGroup`` and ``supplementalGroups`` (setuid/setgid, which needs root), and
``runAsNonRoot`` (without a ``runAsUser``, a root caller runs the command as uid
:data:`DEFAULT_NON_ROOT_UID`). A non-root caller meets a ``runAsNonRoot``
spec whose ``runAsUser`` is that same default (the restricted profile's), and runs it as
itself. Any other ``runAsUser`` that cannot be honoured (the caller is not root and is another
uid) fails the container with ``StartError`` and a message saying why, unless
the user opts out with ``PODRUNNER_LOCAL_IGNORE_RUN_AS_USER=1`` (or
``LocalRuntime(ignore_run_as_user=True)``). The rest (read-only root filesystem, capabilities,
seccomp, privilege escalation, resource limits...) cannot be enforced:
:func:`unenforced_settings` names them, and each pod that asks for any of them gets a
``Warning`` event ``SecurityNotEnforced`` (and an INFO record on this module's logger).

Output becomes the container log, in chunks of whole lines, and the real exit code is reported.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from podrunner._threads import start_quiet
from podrunner.backends.base import ExecResult
from podrunner.backends.fake.execstream import CannedExecStream, spawn
from podrunner.backends.fake.localfiles import prepare_files, run_directory
from podrunner.errors import BackendUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from podrunner.backends.base import ExecStream
    from podrunner.backends.fake.execstream import Busy
    from podrunner.backends.fake.kubelet import Kubelet
    from podrunner.backends.fake.podsim import ContainerSim, PodSim

__all__ = [
    "DEFAULT_NON_ROOT_UID",
    "IGNORE_RUN_AS_USER_ENV",
    "LocalRuntime",
    "end_all_local_processes",
    "unenforced_settings",
]

DEFAULT_NON_ROOT_UID = 65532
"""The uid (and gid) a root caller runs a ``runAsNonRoot`` container as without a ``runAsUser``
(distroless images' ``nonroot`` user)."""

IGNORE_RUN_AS_USER_ENV = "PODRUNNER_LOCAL_IGNORE_RUN_AS_USER"
"""Set to ``1`` to run as the caller when a ``runAsUser`` cannot be honoured."""

_READ_SIZE = 1 << 16
_DRAIN_SECONDS = 5.0
_log = logging.getLogger(__name__)


def _exit_code(returncode: int) -> int:
    # A process killed by signal N reports -N; a container runtime reports 128 + N.
    return 128 - returncode if returncode < 0 else returncode


# -- what outlives a pod: one registry per process, emptied at exit --------------------------


class _Live:
    """Every process group and directory this process's local runtimes own.

    The per-run directories live in one per-process directory, so whatever stops a run
    between creating its directory and recording it (a KeyboardInterrupt...), removing the
    parent at exit removes it too.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.groups: dict[int, subprocess.Popen[bytes]] = {}
        self.parent: str | None = None
        self.pid = os.getpid()

    def parent_dir(self) -> str:
        with self.lock:
            if self.parent is None or self.pid != os.getpid():
                self.pid = os.getpid()
                self.parent = tempfile.mkdtemp(prefix=f"podrunner-local-{self.pid}-")
                # Other uids (runAsUser) must traverse it to reach their own run directory.
                os.chmod(self.parent, 0o711)  # noqa: S103
            return self.parent

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self.lock:
            self.groups[proc.pid] = proc

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self.lock:
            self.groups.pop(proc.pid, None)

    def at_exit(self) -> None:
        if self.pid != os.getpid():
            return  # a forked child does not own its parent's processes
        # Also called from a signal handler about to os._exit, which may have interrupted a
        # holder of the lock: wait briefly, then go ahead without it.
        locked = self.lock.acquire(timeout=1.0)
        try:
            procs = list(self.groups.values())
            self.groups.clear()
            parent, self.parent = self.parent, None
        finally:
            if locked:
                self.lock.release()
        for proc in procs:
            if proc.returncode is None:
                _signal(proc, signal.SIGKILL)
        if parent is not None:
            _remove(parent)


_LIVE = _Live()


def end_all_local_processes() -> None:
    """Kill every process group this process started and remove the run directories.

    Runs at interpreter exit; a program about to ``os._exit`` (which skips atexit) calls it
    first. Safe from a signal handler: it waits at most a second for the runtime's lock.
    """
    _LIVE.at_exit()


atexit.register(end_all_local_processes)


def _remove(path: str) -> None:
    # A process killed a moment ago may still be writing: retry briefly.
    for _ in range(40):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            return
        time.sleep(0.025)


def _kill_if_running(proc: subprocess.Popen[bytes]) -> None:
    # Once the process is reaped its group id may belong to someone else.
    if proc.returncode is None:
        _signal(proc, signal.SIGKILL)


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


# -- security ----------------------------------------------------------------------------------


def _contexts(pod: Mapping[str, Any], container: str | None) -> tuple[dict[str, Any], ...]:
    spec = pod.get("spec") or {}
    pod_sc: dict[str, Any] = spec.get("securityContext") or {}
    out: list[dict[str, Any]] = []
    for c in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        if container is None or c.get("name") == container:
            out.append(c)
    return (pod_sc, *out)


def unenforced_settings(pod: Mapping[str, Any], container: str | None = None) -> list[str]:
    """Name the settings of a pod manifest that the local runtime does not enforce.

    Args:
        pod: The Pod manifest (Kubernetes JSON, as ``build_manifests(spec).pod``).
        container: Only this container's settings (default: every container's).

    Returns:
        One short phrase per setting, e.g. ``"readOnlyRootFilesystem"``, in a stable order;
        empty when the local runtime honours everything the pod asks for. ``runAsUser`` is
        listed only when it will not be honoured (a non-root caller that opted out).

    Example:
        >>> from podrunner.backends.fake.runtime_local import unenforced_settings
        >>> pod = {"spec": {"containers": [{"name": "c", "image": "x",
        ...     "securityContext": {"readOnlyRootFilesystem": True}}]}}
        >>> unenforced_settings(pod)
        ['image (the command runs from this machine)', 'readOnlyRootFilesystem']
    """
    pod_sc, *containers = _contexts(pod, container)
    found: list[str] = ["image (the command runs from this machine)"]
    found += [key for key in _POD_UNENFORCED if pod_sc.get(key)]
    if os.geteuid() != 0:
        found += [f"{key} (needs root)" for key in _NEED_ROOT if pod_sc.get(key) is not None]
    for c in containers:
        for name in _container_unenforced(pod_sc, c):
            if name not in found:
                found.append(name)
    return found


_POD_UNENFORCED = ("seccompProfile", "seLinuxOptions", "appArmorProfile", "sysctls")
_NEED_ROOT = ("fsGroup", "supplementalGroups")
_CONTAINER_UNENFORCED = ("seccompProfile", "seLinuxOptions", "appArmorProfile", "procMount")


def _container_unenforced(pod_sc: Mapping[str, Any], c: Mapping[str, Any]) -> list[str]:
    sc = c.get("securityContext") or {}
    found = []
    if sc.get("readOnlyRootFilesystem"):
        found.append("readOnlyRootFilesystem")
    if sc.get("capabilities"):
        found.append("capabilities")
    if sc.get("allowPrivilegeEscalation") is False:
        found.append("allowPrivilegeEscalation=false")
    if sc.get("privileged"):
        found.append("privileged")
    found += [key for key in _CONTAINER_UNENFORCED if sc.get(key)]
    if (c.get("resources") or {}).get("limits"):
        found.append("resources.limits")
    uid = _identity(pod_sc, sc)[0]
    if uid is not None and uid != os.geteuid() and os.geteuid() != 0:
        found.append(f"runAsUser {uid} (runs as uid {os.geteuid()})")
    return found


def _identity(
    pod_sc: Mapping[str, Any], sc: Mapping[str, Any]
) -> tuple[int | None, int | None, bool]:
    """Return (runAsUser, runAsGroup, runAsNonRoot) as Kubernetes resolves them."""

    def pick(key: str) -> Any:
        value = sc.get(key)
        return pod_sc.get(key) if value is None else value

    uid, gid = pick("runAsUser"), pick("runAsGroup")
    return (
        int(uid) if isinstance(uid, int) else None,
        int(gid) if isinstance(gid, int) else None,
        bool(pick("runAsNonRoot")),
    )


class _User:
    """Who the process runs as; ``error`` says why the container cannot start."""

    __slots__ = ("error", "gid", "groups", "uid")

    def __init__(self) -> None:
        self.uid: int | None = None
        self.gid: int | None = None
        self.groups: list[int] | None = None
        self.error = ""

    def popen_args(self) -> dict[str, Any]:
        if self.uid is None and self.gid is None:
            return {}
        args: dict[str, Any] = {"user": self.uid, "group": self.gid}
        if self.groups is not None:
            args["extra_groups"] = self.groups
        return args


def _resolve_user(pod: Mapping[str, Any], container: str, *, ignore: bool) -> _User:
    pod_sc, *containers = _contexts(pod, container)
    sc = (containers[0].get("securityContext") or {}) if containers else {}
    uid, gid, non_root = _identity(pod_sc, sc)
    me = os.geteuid()
    user = _User()
    if non_root and uid == 0:
        user.error = "runAsNonRoot is set but runAsUser is 0 (root)"
        return user
    if me != 0 and non_root and uid == DEFAULT_NON_ROOT_UID and gid in (None, uid):
        # The restricted profile's implicit default: any non-root caller meets its intent.
        return user
    if uid is None and non_root and me == 0:
        uid = DEFAULT_NON_ROOT_UID  # never root when the spec asks for non-root
    if gid is None and uid is not None and uid != me:
        gid = uid
    if me == 0:
        user.uid = uid
        user.gid = gid
        extra = [pod_sc.get("fsGroup"), *(pod_sc.get("supplementalGroups") or [])]
        if uid is not None:
            user.groups = [int(g) for g in extra if isinstance(g, int)]
        return user
    wrong_uid = uid is not None and uid != me
    wrong_gid = gid is not None and gid != os.getegid()
    if (wrong_uid or wrong_gid) and not ignore:
        asked = f"uid {uid}" if wrong_uid else f"gid {gid}"
        user.error = (
            f"the local runtime cannot run the command as {asked}: podrunner runs as uid {me}, "
            f"not root; set {IGNORE_RUN_AS_USER_ENV}=1 to run it as uid {me} anyway"
        )
    return user


# -- the runtime -------------------------------------------------------------------------------


class _Run:
    """What the runtime keeps per container: its environment, directory and user."""

    __slots__ = ("argv", "cwd", "env", "local", "user")

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        user: _User,
        local: Callable[[str], str],
    ) -> None:
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.user = user
        self.local = local  # a path in the container -> the local one


class LocalRuntime:
    """Runs containers as local process groups (see the module docstring).

    Args:
        ignore_run_as_user: Run as the caller when a ``runAsUser``/``runAsGroup`` cannot be
            honoured, instead of failing the container. Default: the
            ``PODRUNNER_LOCAL_IGNORE_RUN_AS_USER`` environment variable is ``1``.
    """

    def __init__(self, *, ignore_run_as_user: bool | None = None) -> None:
        if ignore_run_as_user is None:
            ignore_run_as_user = os.environ.get(IGNORE_RUN_AS_USER_ENV, "") == "1"
        self.ignore_run_as_user = ignore_run_as_user
        self._runs: dict[tuple[str, str], _Run] = {}
        self._claims: Path | None = None
        self._claims_lock = threading.Lock()

    def _claim_dir(self, namespace: str, claim: str) -> Path:
        """The directory of one PVC of this runtime's cluster: it outlives the pods."""
        with self._claims_lock:
            if self._claims is None:
                self._claims = Path(tempfile.mkdtemp(prefix="claims-", dir=_LIVE.parent_dir()))
                self._claims.chmod(0o711)
            path = self._claims / namespace / claim
            if not path.is_dir():
                path.mkdir(parents=True)
                # Writable by whichever user a pod runs as, like a volume with an fsGroup.
                path.chmod(0o777)
                path.parent.chmod(0o711)
            return path

    def _prepare(self, kubelet: Kubelet, sim: PodSim, c: ContainerSim) -> _Run:
        objects = kubelet.store.objects
        pod = objects["Pod"].get((sim.namespace, sim.name)) or {}
        root = run_directory(sim, _LIVE.parent_dir)
        user = _resolve_user(pod, c.name, ignore=self.ignore_run_as_user)
        argv, env, cwd, local = prepare_files(
            objects, pod, sim, c, root, user.uid, user.gid, user.groups, self._claim_dir
        )
        return _Run(argv, env, cwd, user, local)

    # -- Runtime protocol -----------------------------------------------------------------

    def start(self, kubelet: Kubelet, sim: PodSim, c: ContainerSim) -> None:
        """Spawn the container's argv as a new session and follow it with threads."""
        clock = kubelet.clock

        def fail(message: str) -> None:
            kubelet.write_log(c, message.encode() + b"\n")
            clock.call_later(0.0, lambda: kubelet.container_exited(sim, c, 128, "StartError"))

        if not c.argv:
            fail("the local runtime needs a command: the image is ignored")
            return
        try:
            run = self._prepare(kubelet, sim, c)
        except OSError as exc:
            fail(f"the local runtime could not prepare the pod's files: {exc.strerror or exc}")
            return
        self._runs[(sim.uid, c.name)] = run
        self._warn_unenforced(kubelet, sim, c)
        if run.user.error:
            fail(run.user.error)
            return
        try:
            proc = subprocess.Popen(
                run.argv,
                cwd=run.cwd,
                env=run.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                **run.user.popen_args(),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            fail(f'exec: "{c.argv[0]}": {_spawn_failure(exc, run.user)}')
            return
        _LIVE.add(proc)
        c.proc = proc
        _follow(kubelet, sim, c, proc)

    def _warn_unenforced(self, kubelet: Kubelet, sim: PodSim, c: ContainerSim) -> None:
        pod = kubelet.store.objects["Pod"].get((sim.namespace, sim.name))
        if pod is None:
            return
        names = unenforced_settings(pod, c.name)[1:]  # the image is ignored for every pod
        if not names:
            return
        message = "the local runtime does not enforce: " + ", ".join(names)
        # INFO, not WARNING: the pod's Warning event and the CLI's banner are where users see
        # it; Python's last-resort handler would print a WARNING into the command's output.
        _log.info("pod %s/%s: %s", sim.namespace, sim.name, message)
        kubelet.pods.event(pod, "SecurityNotEnforced", message, warning=True, container=c.name)

    def stop(self, sim: PodSim, c: ContainerSim, grace: float) -> None:
        """SIGTERM the process group now and SIGKILL it after ``grace`` seconds."""
        proc = c.proc
        if proc is None or proc.returncode is not None:
            return
        if grace <= 0:
            _signal(proc, signal.SIGKILL)
            return
        _signal(proc, signal.SIGTERM)
        timer = threading.Timer(grace, _kill_if_running, args=(proc,))
        timer.daemon = True
        start_quiet(timer)

    def cleanup(self, sim: PodSim) -> None:
        """Kill every remaining process of the pod and remove its temporary directory."""
        for c in sim.every():
            proc = c.proc
            if proc is not None and proc.returncode is None:
                _signal(proc, signal.SIGKILL)
            self._runs.pop((sim.uid, c.name), None)
        if sim.tempdir is not None:
            _remove(sim.tempdir)
            sim.tempdir = None

    def exec(
        self,
        sim: PodSim,
        c: ContainerSim,
        argv: list[str],
        *,
        stdin: bytes | None,
        timeout: float | None,
    ) -> ExecResult:
        """Run ``argv`` next to the container's process: same user, environment and directory.

        Arguments that name a path under one of the container's mounts are mapped to the
        pod's local directory, as for the container's own argv.

        The exec runs in its own process group, which is killed when it ends: background
        processes it starts do not outlive it.
        """
        run = self._runs.get((sim.uid, c.name))
        env = run.env if run else {"PATH": os.environ.get("PATH", "")}
        cwd = run.cwd if run else None
        if run is not None:
            # As the container's own argv: a path under a mount names the pod's files.
            argv = [run.local(arg) for arg in argv]
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                **(run.user.popen_args() if run else {}),
            )
        except FileNotFoundError:
            return ExecResult(
                127,
                b"",
                f'exec: "{argv[0]}": executable file not found in $PATH\n'.encode(),
            )
        _LIVE.add(proc)
        try:
            out, err = proc.communicate(stdin or b"", timeout=timeout)
        except BaseException as exc:
            # A timeout, Ctrl-C...: the exec's whole group ends, and its pipes are closed.
            _signal(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
                proc.communicate(timeout=_DRAIN_SECONDS)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            proc.wait()
            _LIVE.discard(proc)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise BackendUnavailable(f"exec timed out after {timeout}s") from exc
            raise
        # What the exec started in the background ends with it.
        _signal(proc, signal.SIGKILL)
        _LIVE.discard(proc)
        return ExecResult(_exit_code(proc.returncode), out, err)

    def open_exec(
        self, sim: PodSim, c: ContainerSim, argv: list[str], *, stdin: bool, busy: Busy
    ) -> ExecStream:
        """Start ``argv`` as :meth:`exec` does and stream its pipes (see :meth:`exec`)."""
        run = self._runs.get((sim.uid, c.name))
        env = run.env if run else {"PATH": os.environ.get("PATH", "")}
        if run is not None:
            argv = [run.local(arg) for arg in argv]
        try:
            stream = spawn(
                argv,
                busy,
                stdin=stdin,
                cwd=run.cwd if run else None,
                env=env,
                **(run.user.popen_args() if run else {}),
            )
        except FileNotFoundError:
            return CannedExecStream(
                lambda _: ExecResult(
                    127, b"", f'exec: "{argv[0]}": executable file not found in $PATH\n'.encode()
                ),
                stdin=stdin,
                reads_stdin=False,
            )
        proc = stream.process
        _LIVE.add(proc)
        stream.on_end = partial(_LIVE.discard, proc)
        return stream


# -- following a process -----------------------------------------------------------------------


def _spawn_failure(exc: BaseException, user: _User) -> str:
    """Why the process could not start, with a hint when it was to run as another uid."""
    reason = getattr(exc, "strerror", None) or str(exc)
    who = user.uid
    if who is not None and who != os.geteuid():
        reason = (
            f"{reason} (the command runs as uid {who}, as the pod's securityContext "
            "asks; a program under a directory only its owner can enter, such as "
            "/root, is out of its reach: use one that uid can run, or a spec with "
            "run_as_user, e.g. --security baseline on the CLI)"
        )
    return reason


def _follow(kubelet: Kubelet, sim: PodSim, c: ContainerSim, proc: subprocess.Popen[bytes]) -> None:
    """Pump the process's output into the container's log and report its exit."""
    container_id = c.container_id
    readers = [
        threading.Thread(
            target=_pump, args=(kubelet, c, container_id, pipe), daemon=True, name=f"log-{sim.name}"
        )
        for pipe in (proc.stdout, proc.stderr)
        if pipe is not None
    ]
    for reader in readers:
        start_quiet(reader)
    start_quiet(
        threading.Thread(
            target=_wait,
            args=(kubelet, sim, c, container_id, proc, readers),
            daemon=True,
            name=f"wait-{sim.name}",
        )
    )


def _pump(kubelet: Kubelet, c: ContainerSim, container_id: str, pipe: IO[bytes]) -> None:
    # Whole lines in large chunks: one lock and one wake-up per chunk, not per line, and
    # stdout and stderr never split each other's lines.
    lock = kubelet.clock.lock
    fd = pipe.fileno()
    tail = b""
    while True:
        data = os.read(fd, _READ_SIZE)
        if not data:
            break
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(tail) < _READ_SIZE:
            tail += data
            continue
        block, tail = tail + data[:cut], data[cut:]
        if not block:  # an over-long line: pass it on in pieces
            block, tail = tail, b""
        with lock:
            kubelet.write_log(c, block, container_id)
    if tail:
        with lock:
            kubelet.write_log(c, tail, container_id)
    pipe.close()


def _wait(
    kubelet: Kubelet,
    sim: PodSim,
    c: ContainerSim,
    container_id: str,
    proc: subprocess.Popen[bytes],
    readers: list[threading.Thread],
) -> None:
    # Wait without reaping, so the group id cannot be reused before the rest of the group
    # is killed: a pod's processes end with its main process.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    _signal(proc, signal.SIGKILL)
    code = _exit_code(proc.wait())
    _LIVE.discard(proc)
    for reader in readers:
        # A process that left the group (setsid) may hold the pipes open forever; the
        # container has exited all the same.
        reader.join(_DRAIN_SECONDS)
    clock = kubelet.clock
    with clock.lock:
        if c.container_id == container_id and c.running():
            kubelet.container_exited(sim, c, code)
        clock.notify()
