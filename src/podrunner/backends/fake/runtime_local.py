"""The local runtime: a pod's container command runs as a process on this machine.

This is what the CLI uses when no cluster is configured, and what tests use to run real
commands without Kubernetes. The image is ignored: the command must exist locally.

**Files.** Each pod gets a private directory (under one per-process directory in the system
temp dir) holding ``home/``, ``tmp/``, ``work/`` (the default working directory) and
``volumes/<name>/``: Secret and ConfigMap volumes are written there (``items``, modes and
``subPath`` honoured), emptyDirs are empty directories, a ``hostPath`` is the host path itself
and any other volume (a PVC...) is an empty directory. A local process cannot see a mount at its
``mountPath``, so paths are mapped, by one rule: **an argv element, an env value or the
``workingDir`` that is a mount path, or starts with one followed by** ``/``, **is rewritten to
the local directory** (the longest mount path wins). Paths inside longer strings (a shell
script's body) are not rewritten. ``HOME`` is always a per-run directory: the mapped mount when
the spec's ``HOME`` is one, else ``home/``. ``TMPDIR`` defaults to ``tmp/``. The directory is
removed when the pod goes, when the cluster is closed, and at interpreter exit, whatever ended
the run.

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
import base64
import contextlib
import logging
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from podrunner.backends.base import ExecResult
from podrunner.errors import BackendUnavailable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from podrunner.backends.fake.kubelet import ContainerSim, Kubelet, PodSim

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
    for c in spec.get("containers") or []:
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
    seen: set[str] = set()

    def add(name: str) -> None:
        if name not in seen:
            seen.add(name)
            found.append(name)

    for key in ("seccompProfile", "seLinuxOptions", "appArmorProfile", "sysctls"):
        if pod_sc.get(key):
            add(key)
    if os.geteuid() != 0:
        for key in ("fsGroup", "supplementalGroups"):
            if pod_sc.get(key) is not None:
                add(f"{key} (needs root)")
    for c in containers:
        sc = c.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem"):
            add("readOnlyRootFilesystem")
        if sc.get("capabilities"):
            add("capabilities")
        if sc.get("allowPrivilegeEscalation") is False:
            add("allowPrivilegeEscalation=false")
        if sc.get("privileged"):
            add("privileged")
        for key in ("seccompProfile", "seLinuxOptions", "appArmorProfile", "procMount"):
            if sc.get(key):
                add(key)
        if (c.get("resources") or {}).get("limits"):
            add("resources.limits")
        uid = _identity(pod_sc, sc)[0]
        if uid is not None and uid != os.geteuid() and os.geteuid() != 0:
            add(f"runAsUser {uid} (runs as uid {os.geteuid()})")
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

    __slots__ = ("argv", "cwd", "env", "user")

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, user: _User) -> None:
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.user = user


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

    # -- files and environment ------------------------------------------------------------

    @staticmethod
    def _tempdir(sim: PodSim) -> Path:
        if sim.tempdir is None:
            root = Path(tempfile.mkdtemp(prefix=f"{sim.name[:40]}-", dir=_LIVE.parent_dir()))
            sim.tempdir = str(root)
            for sub in ("home", "tmp", "work", "volumes"):
                (root / sub).mkdir()
        return Path(sim.tempdir)

    def _prepare(self, kubelet: Kubelet, sim: PodSim, c: ContainerSim) -> _Run:
        objects = kubelet.store.objects
        pod = objects["Pod"].get((sim.namespace, sim.name)) or {}
        spec: dict[str, Any] = next(
            (x for x in (pod.get("spec") or {}).get("containers") or [] if x.get("name") == c.name),
            {},
        )
        root = self._tempdir(sim)
        user = _resolve_user(pod, c.name, ignore=self.ignore_run_as_user)
        mounts = self._write_volumes(kubelet, sim, pod, spec, root)

        def local(value: str) -> str:
            # A path that exists on this machine names the user's own file (a program under
            # /tmp while the pod mounts an emptyDir there): only a path the pod alone
            # would have is moved into the run's directory.
            if os.path.lexists(value):
                return value
            return _map_path(value, mounts)

        path = os.environ.get("PATH", "/usr/bin:/bin")
        if user.uid is not None and user.uid != os.geteuid():
            # The caller's PATH may list directories the command's user cannot search (under
            # /root...): a command found there would fail with EACCES instead of running.
            groups = {user.gid if user.gid is not None else user.uid, *(user.groups or [])}
            path = ":".join(d for d in path.split(":") if _searchable(d, user.uid, groups))
        env = {"PATH": path, "HOSTNAME": sim.name}
        mapped: set[str] = set()

        def data_of(kind: str, name: str) -> dict[str, str]:
            obj = objects[kind].get((sim.namespace, name)) or {}
            raw = obj.get("data") or {}
            if kind == "Secret":
                return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in raw.items()}
            return dict(raw)

        for source in spec.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                ref = source.get(field)
                if ref:
                    for key, value in data_of(kind, ref.get("name", "")).items():
                        env[prefix + key] = value
        for var in spec.get("env") or []:
            name = str(var.get("name"))
            if "value" in var:
                value = str(var.get("value") or "")
                env[name] = local(value)
                if env[name] != value:
                    mapped.add(name)
                continue
            source = var.get("valueFrom") or {}
            for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                ref = source.get(field)
                if ref:
                    found = data_of(kind, ref.get("name", "")).get(ref.get("key", ""))
                    if found is not None:
                        env[name] = found
            field_ref = source.get("fieldRef")
            if field_ref:
                path = field_ref.get("fieldPath", "")
                values = {
                    "metadata.name": sim.name,
                    "metadata.namespace": sim.namespace,
                    "metadata.uid": sim.uid,
                    "spec.nodeName": "fake-node-1",
                    "status.podIP": sim.pod_ip or "",
                    "status.hostIP": "127.0.0.1",
                }
                env[name] = values.get(path, "")
        # HOME outside every mount would be a directory of the host: use the run's own.
        if "HOME" not in mapped:
            env["HOME"] = str(root / "home")
        env.setdefault("TMPDIR", str(root / "tmp"))
        argv = [local(a) for a in c.argv]
        workdir = spec.get("workingDir")
        cwd = Path(local(workdir)) if workdir and local(workdir) != workdir else root / "work"
        if user.uid is not None and user.uid != os.geteuid():
            _chown_tree(root, user.uid, user.gid if user.gid is not None else -1)
        return _Run(argv, env, cwd, user)

    def _write_volumes(
        self,
        kubelet: Kubelet,
        sim: PodSim,
        pod: dict[str, Any],
        spec: dict[str, Any],
        root: Path,
    ) -> dict[str, str]:
        """Materialise the pod's volumes; return ``{mountPath: local path}`` for ``spec``."""
        objects = kubelet.store.objects
        places: dict[str, Path] = {}
        for index, volume in enumerate((pod.get("spec") or {}).get("volumes") or []):
            name = str(volume.get("name", ""))
            target = root / "volumes" / str(index)
            host = (volume.get("hostPath") or {}).get("path")
            if host:
                places[name] = Path(host)
                continue
            target.mkdir(exist_ok=True)
            places[name] = target
            for kind, field, key in (
                ("Secret", "secret", "secretName"),
                ("ConfigMap", "configMap", "name"),
            ):
                ref = volume.get(field)
                if ref:
                    obj = objects[kind].get((sim.namespace, ref.get(key, ""))) or {}
                    _write_files(target, kind, obj, ref)
        mounts: dict[str, str] = {}
        for mount in spec.get("volumeMounts") or []:
            place = places.get(str(mount.get("name", "")))
            path = str(mount.get("mountPath", "")).rstrip("/")
            if place is None or not path:
                continue
            sub = str(mount.get("subPath") or "")
            local = _inside(place, sub) if sub else place
            if local is not None:
                mounts[path] = str(local)
        return mounts

    # -- Runtime protocol -----------------------------------------------------------------

    def start(self, kubelet: Kubelet, sim: PodSim, c: ContainerSim) -> None:
        """Spawn the container's argv as a new session and follow it with threads."""
        container_id = c.container_id
        clock = kubelet.clock
        if not c.argv:
            kubelet.write_log(c, b"the local runtime needs a command: the image is ignored\n")
            clock.call_later(0.0, lambda: kubelet.container_exited(sim, c, 128, "StartError"))
            return

        def fail(message: str) -> None:
            kubelet.write_log(c, message.encode() + b"\n")
            clock.call_later(0.0, lambda: kubelet.container_exited(sim, c, 128, "StartError"))

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
            reason = getattr(exc, "strerror", None) or exc
            who = run.user.uid
            if who is not None and who != os.geteuid():
                reason = (
                    f"{reason} (the command runs as uid {who}, as the pod's securityContext "
                    "asks; a program under a directory only its owner can enter, such as "
                    "/root, is out of its reach: use one that uid can run, or a spec with "
                    "run_as_user, e.g. --security baseline on the CLI)"
                )
            fail(f'exec: "{c.argv[0]}": {reason}')
            return
        _LIVE.add(proc)
        c.proc = proc

        def pump(pipe: IO[bytes]) -> None:
            # Whole lines in large chunks: one lock and one wake-up per chunk, not per line,
            # and stdout and stderr never split each other's lines.
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
                with clock.lock:
                    kubelet.write_log(c, block, container_id)
            if tail:
                with clock.lock:
                    kubelet.write_log(c, tail, container_id)
            pipe.close()

        readers = [
            threading.Thread(target=pump, args=(pipe,), daemon=True, name=f"log-{sim.name}")
            for pipe in (proc.stdout, proc.stderr)
            if pipe is not None
        ]
        for reader in readers:
            reader.start()

        def wait() -> None:
            # Wait without reaping, so the group id cannot be reused before the rest of the
            # group is killed: a pod's processes end with its main process.
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            _signal(proc, signal.SIGKILL)
            code = _exit_code(proc.wait())
            _LIVE.discard(proc)
            for reader in readers:
                # A process that left the group (setsid) may hold the pipes open forever;
                # the container has exited all the same.
                reader.join(_DRAIN_SECONDS)
            with clock.lock:
                if c.container_id == container_id and c.running():
                    kubelet.container_exited(sim, c, code)
                clock.notify()

        threading.Thread(target=wait, daemon=True, name=f"wait-{sim.name}").start()

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
        kubelet._event(pod, "SecurityNotEnforced", message, warning=True, container=c.name)

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
        timer.start()

    def cleanup(self, sim: PodSim) -> None:
        """Kill every remaining process of the pod and remove its temporary directory."""
        for c in sim.containers:
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

        The exec runs in its own process group, which is killed when it ends: background
        processes it starts do not outlive it.
        """
        run = self._runs.get((sim.uid, c.name))
        env = run.env if run else {"PATH": os.environ.get("PATH", "")}
        cwd = run.cwd if run else None
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


# -- helpers -------------------------------------------------------------------------------------


def _map_path(value: str, mounts: Mapping[str, str]) -> str:
    """Rewrite ``value`` if it is a mount path or lies under one (the longest wins)."""
    best = ""
    for path in mounts:
        if len(path) > len(best) and (value == path or value.startswith(path + "/")):
            best = path
    return mounts[best] + value[len(best) :] if best else value


def _inside(base: Path, relative: str) -> Path | None:
    """``base / relative`` if it stays inside ``base`` (no ``..`` escape), else ``None``."""
    target = (base / relative).resolve()
    return target if target == base.resolve() or base.resolve() in target.parents else None


def _write_files(target: Path, kind: str, obj: Mapping[str, Any], ref: Mapping[str, Any]) -> None:
    data: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        data[key] = base64.b64decode(value) if kind == "Secret" else str(value).encode()
    for key, value in (obj.get("binaryData") or {}).items():
        data[key] = base64.b64decode(value)
    default_mode = ref.get("defaultMode", 0o644)
    items = ref.get("items")
    chosen = (
        [(i.get("key", ""), i.get("path", ""), i.get("mode", default_mode)) for i in items]
        if items
        else [(k, k, default_mode) for k in data]
    )
    for key, path, mode in chosen:
        if key not in data:
            continue
        file = _inside(target, str(path))
        if file is None or file == target.resolve():
            continue
        file.parent.mkdir(parents=True, exist_ok=True)
        file.unlink(missing_ok=True)  # a restart rewrites it; a 0400 file cannot be opened
        file.write_bytes(data[key])
        os.chmod(file, int(mode) & 0o777)


def _searchable(directory: str, uid: int, gids: set[int]) -> bool:
    """Whether ``uid`` (in groups ``gids``) can search ``directory`` and each of its parents."""
    path = Path(directory)
    if not path.is_absolute():
        return False
    for part in (path, *path.parents):
        try:
            st = part.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)
