"""The local runtime: a pod's container command runs as a process on this machine.

This is what the CLI uses when no cluster is configured, and what tests use to run real
commands without Kubernetes. The image is ignored: the command must exist locally. Each pod
gets a temporary directory with ``home/`` (``$HOME``) and ``work/`` (the working directory);
the environment is the pod's plain ``env`` values plus ``secretKeyRef``, ``configMapKeyRef``,
``fieldRef`` and ``envFrom`` references resolved from the fake's store, on top of ``PATH``.
Secret and ConfigMap volumes are written under ``volumes/<mountPath>`` in the same directory;
commands that hard-code the mount path will not find them. Output becomes the container log,
one timestamped line at a time, and the real exit code is reported. Deletion sends SIGTERM to
the process group, then SIGKILL after the grace period.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from podrunner.backends.base import ExecResult
from podrunner.errors import BackendUnavailable

if TYPE_CHECKING:
    from podrunner.backends.fake.kubelet import ContainerSim, Kubelet, PodSim

__all__ = ["LocalRuntime"]


def _exit_code(returncode: int) -> int:
    # A process killed by signal N reports -N; a container runtime reports 128 + N.
    return 128 - returncode if returncode < 0 else returncode


class LocalRuntime:
    """Runs containers as local process groups (see the module docstring)."""

    def __init__(self) -> None:
        self._envs: dict[tuple[str, str], dict[str, str]] = {}

    # -- environment ----------------------------------------------------------------------

    def _tempdir(self, sim: PodSim) -> Path:
        if sim.tempdir is None:
            sim.tempdir = tempfile.mkdtemp(prefix=f"podrunner-{sim.name[:40]}-")
            root = Path(sim.tempdir)
            (root / "home").mkdir()
            (root / "work").mkdir()
        return Path(sim.tempdir)

    def _env(self, kubelet: Kubelet, sim: PodSim, c: ContainerSim) -> dict[str, str]:
        objects = kubelet.store.objects
        pod = objects["Pod"].get((sim.namespace, sim.name)) or {}
        spec: dict[str, Any] = next(
            (x for x in (pod.get("spec") or {}).get("containers") or [] if x.get("name") == c.name),
            {},
        )
        root = self._tempdir(sim)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root / "home"),
            "HOSTNAME": sim.name,
        }

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
                env[name] = str(var.get("value") or "")
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
        self._write_volumes(kubelet, sim, pod, root)
        return env

    def _write_volumes(
        self, kubelet: Kubelet, sim: PodSim, pod: dict[str, Any], root: Path
    ) -> None:
        objects = kubelet.store.objects
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            for kind, field, key in (
                ("Secret", "secret", "secretName"),
                ("ConfigMap", "configMap", "name"),
            ):
                ref = volume.get(field)
                if not ref:
                    continue
                obj = objects[kind].get((sim.namespace, ref.get(key, ""))) or {}
                target = root / "volumes" / volume.get("name", "volume")
                target.mkdir(parents=True, exist_ok=True)
                for item, value in (obj.get("data") or {}).items():
                    content = base64.b64decode(value) if kind == "Secret" else str(value).encode()
                    (target / item).write_bytes(content)

    # -- Runtime protocol -----------------------------------------------------------------

    def start(self, kubelet: Kubelet, sim: PodSim, c: ContainerSim) -> None:
        """Spawn the container's argv as a new process group and follow it with threads."""
        container_id = c.container_id
        clock = kubelet.clock
        if not c.argv:
            kubelet.write_log(c, b"the local runtime needs a command: the image is ignored\n")
            clock.call_later(0.0, lambda: kubelet.container_exited(sim, c, 128, "StartError"))
            return
        env = self._env(kubelet, sim, c)
        self._envs[(sim.uid, c.name)] = env
        root = self._tempdir(sim)
        try:
            proc = subprocess.Popen(
                c.argv,
                cwd=root / "work",
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            message = f"exec: {c.argv[0]!r}: {exc.strerror or exc}\n".encode()
            kubelet.write_log(c, message)
            clock.call_later(0.0, lambda: kubelet.container_exited(sim, c, 128, "StartError"))
            return
        c.proc = proc

        def pump(pipe: IO[bytes]) -> None:
            for line in iter(pipe.readline, b""):
                with clock.lock:
                    kubelet.write_log(c, line, container_id)
            pipe.close()

        readers = [
            threading.Thread(target=pump, args=(pipe,), daemon=True, name=f"log-{sim.name}")
            for pipe in (proc.stdout, proc.stderr)
            if pipe is not None
        ]
        for reader in readers:
            reader.start()

        def wait() -> None:
            code = _exit_code(proc.wait())
            for reader in readers:
                reader.join()
            with clock.lock:
                if c.container_id == container_id and c.running():
                    kubelet.container_exited(sim, c, code)
                clock.notify()

        threading.Thread(target=wait, daemon=True, name=f"wait-{sim.name}").start()

    def stop(self, sim: PodSim, c: ContainerSim, grace: float) -> None:
        """SIGTERM the process group now and SIGKILL it after ``grace`` seconds."""
        proc = c.proc
        if proc is None or proc.poll() is not None:
            return
        if grace <= 0:
            _signal(proc, signal.SIGKILL)
            return
        _signal(proc, signal.SIGTERM)
        timer = threading.Timer(grace, _signal, args=(proc, signal.SIGKILL))
        timer.daemon = True
        timer.start()

    def cleanup(self, sim: PodSim) -> None:
        """Kill every remaining process of the pod and remove its temporary directory."""
        for c in sim.containers:
            proc = c.proc
            if proc is not None and proc.poll() is None:
                _signal(proc, signal.SIGKILL)
            self._envs.pop((sim.uid, c.name), None)
        if sim.tempdir is not None:
            shutil.rmtree(sim.tempdir, ignore_errors=True)
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
        """Run ``argv`` next to the container's process, in the pod's working directory."""
        env = self._envs.get((sim.uid, c.name)) or {"PATH": os.environ.get("PATH", "")}
        cwd = Path(sim.tempdir) / "work" if sim.tempdir else None
        try:
            done = subprocess.run(
                argv,
                cwd=cwd,
                env=env,
                input=stdin or b"",
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            return ExecResult(
                127,
                b"",
                f'exec: "{argv[0]}": executable file not found in $PATH\n'.encode(),
            )
        except subprocess.TimeoutExpired as exc:
            raise BackendUnavailable(f"exec timed out after {timeout}s") from exc
        return ExecResult(_exit_code(done.returncode), done.stdout, done.stderr)


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
