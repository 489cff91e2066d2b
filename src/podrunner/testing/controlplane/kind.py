"""A kind cluster for integration tests, wrapping an installed ``kind`` binary.

:class:`KindCluster` never downloads anything: it uses the ``kind`` executable on ``PATH`` (or the
one it is given) and the local Docker engine. It reuses a cluster of the same name if one exists,
otherwise creates it and remembers that it did; it writes a private kubeconfig (the user's
``~/.kube/config`` is never touched); it waits until the API server answers and the ``default``
ServiceAccount exists; and on exit it deletes the cluster only if it created it and was not asked
to keep it::

    with KindCluster("podrunner-test") as cluster:
        cluster.load_image("myapp:test-1")
        run_tests(kubeconfig=cluster.kubeconfig)

Without ``kind`` or without a reachable Docker engine, :meth:`KindCluster.start` raises
:class:`ClusterUnavailable` with a one-line reason, which fixtures turn into ``pytest.skip``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from podrunner.testing.controlplane._common import (
    ClusterStartError,
    ClusterUnavailable,
    wait_for_api,
)

__all__ = ["DEFAULT_KIND_CLUSTER_NAME", "KindCluster"]

DEFAULT_KIND_CLUSTER_NAME = "podrunner-test"


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class KindCluster:
    """A kind cluster that is reused when it exists and deleted only if this object created it.

    Args:
        name: kind cluster name (``kind create cluster --name``).
        kind_binary: Path or name of the ``kind`` executable; default: ``kind`` on ``PATH``.
        image: Node image (``--image``), best pinned by digest, e.g.
            ``kindest/node:v1.35.0@sha256:...``; default: kind's own default.
        config: Optional kind config file (``--config``).
        keep: Keep a cluster this object created after :meth:`stop` (default: delete it).
        workdir: Directory for the private kubeconfig; default: a new temporary directory.
        wait_timeout: Seconds to wait for the control plane and the ``default`` ServiceAccount.
    """

    def __init__(
        self,
        name: str = DEFAULT_KIND_CLUSTER_NAME,
        *,
        kind_binary: str | os.PathLike[str] | None = None,
        image: str | None = None,
        config: str | os.PathLike[str] | None = None,
        keep: bool = False,
        workdir: str | os.PathLike[str] | None = None,
        wait_timeout: float = 180.0,
    ) -> None:
        self.name = name
        self.image = image
        self.config = Path(config) if config is not None else None
        self.keep = keep
        self.wait_timeout = wait_timeout
        self._kind_binary = str(kind_binary) if kind_binary is not None else "kind"
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self._workdir: Path | None = None
        self._owns_workdir = False
        self._kubeconfig: Path | None = None
        self._created = False
        self._started = False

    # -- properties ---------------------------------------------------------------------------

    @property
    def created(self) -> bool:
        """True if this object created the cluster (and so may delete it)."""
        return self._created

    @property
    def kubeconfig(self) -> Path:
        """Path of the private kubeconfig (only valid after :meth:`start`)."""
        if self._kubeconfig is None:
            raise RuntimeError("KindCluster is not started")
        return self._kubeconfig

    # -- lifecycle ----------------------------------------------------------------------------

    def _kind(self) -> str:
        found = shutil.which(self._kind_binary)
        if found is None:
            raise ClusterUnavailable(
                f"kind is not installed ({self._kind_binary!r} not found on PATH); "
                "install kind and Docker, or use the kwok control plane"
            )
        return found

    def _run(self, *args: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self._kind(), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _check_docker(self) -> None:
        docker = shutil.which("docker")
        if docker is None:
            raise ClusterUnavailable("no Docker engine: `docker` is not on PATH (kind needs it)")
        try:
            proc = subprocess.run(
                [docker, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClusterUnavailable(f"no Docker engine: `docker info` failed: {exc}") from exc
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise ClusterUnavailable(f"no Docker engine: `docker info` failed: {reason}")

    def exists(self) -> bool:
        """Return True if ``kind get clusters`` lists this cluster's name."""
        proc = self._run("get", "clusters", timeout=60)
        if proc.returncode != 0:
            raise ClusterStartError(f"`kind get clusters` failed: {_tail(proc.stderr, 5)}")
        return self.name in proc.stdout.split()

    def start(self) -> KindCluster:
        """Reuse or create the cluster, write the kubeconfig and wait until it is usable.

        Returns:
            This object, so ``cluster = KindCluster().start()`` works.

        Raises:
            ClusterUnavailable: ``kind`` or the Docker engine is missing.
            ClusterStartError: kind failed, or the cluster did not become ready in time.
        """
        if self._started:
            return self
        self._kind()
        self._check_docker()
        if self._workdir_arg is not None:
            self._workdir = self._workdir_arg
            self._workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"podrunner-kind-{self.name}-"))
            self._owns_workdir = True
        self._kubeconfig = self._workdir / "kubeconfig"
        try:
            if not self.exists():
                args = ["create", "cluster", "--name", self.name, "--wait", "120s"]
                args += ["--kubeconfig", str(self._kubeconfig)]
                if self.image:
                    args += ["--image", self.image]
                if self.config is not None:
                    args += ["--config", str(self.config)]
                proc = self._run(*args, timeout=900)
                if proc.returncode != 0:
                    raise ClusterStartError(
                        f"`kind create cluster --name {self.name}` failed "
                        f"(exit {proc.returncode}):\n{_tail(proc.stderr)}"
                    )
                self._created = True
            self._write_kubeconfig()
            self._started = True
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_kubeconfig(self) -> None:
        proc = self._run("get", "kubeconfig", "--name", self.name, timeout=60)
        if proc.returncode != 0:
            raise ClusterStartError(
                f"`kind get kubeconfig --name {self.name}` failed: {_tail(proc.stderr, 5)}"
            )
        assert self._kubeconfig is not None
        self._kubeconfig.write_text(proc.stdout)
        self._kubeconfig.chmod(0o600)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.wait_timeout
        wait_for_api(self.kubeconfig, deadline=deadline, what=f"kind cluster {self.name}")

    def load_image(self, image: str) -> None:
        """Load a local Docker image into the cluster's nodes (``kind load docker-image``).

        Pods using it need ``imagePullPolicy: IfNotPresent`` or ``Never`` and a tag other than
        ``latest``.

        Raises:
            ClusterStartError: kind could not load the image.
        """
        proc = self._run("load", "docker-image", image, "--name", self.name, timeout=900)
        if proc.returncode != 0:
            raise ClusterStartError(
                f"`kind load docker-image {image}` failed: {_tail(proc.stderr, 10)}"
            )

    def stop(self) -> None:
        """Delete the cluster if this object created it and ``keep`` is false; drop the workdir."""
        if self._created and not self.keep:
            proc = self._run("delete", "cluster", "--name", self.name, timeout=300)
            if proc.returncode == 0:
                self._created = False
        self._started = False
        if self._owns_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._owns_workdir = False

    def __enter__(self) -> KindCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KindCluster(name={self.name!r}, created={self._created}, keep={self.keep})"
