"""A real Kubernetes control plane on 127.0.0.1 with kwok-simulated nodes, for tests without Docker.

:class:`KwokCluster` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
from binaries built by ``python -m podrunner.testing.controlplane build`` (pinned versions, see
:data:`VERSIONS`),
waits until the API server is ready, the kwok node is Ready and the ``default`` ServiceAccount
exists, and writes a private kubeconfig::

    with KwokCluster() as cluster:
        run_tests(kubeconfig=cluster.kubeconfig)

Pods are scheduled by the real kube-scheduler onto one kwok node; kwok plays the kubelet. The
Stages installed here (``stages/pod.yaml``) implement podrunner's simulation annotations
(:mod:`podrunner.simulation`):

- ``sim.podrunner.dev/exit-code``: the container's exit code (default 0);
- ``sim.podrunner.dev/duration``: seconds the container runs (default 1);
- ``sim.podrunner.dev/logs``: text written to the container's log when it starts, served by the
  real ``pods/log`` endpoint (``follow``, ``timestamps``, ``tailLines``, ``sinceTime``);
- ``sim.podrunner.dev/failure``: ``ImagePullBackOff`` (waiting ``ErrImagePull`` then
  ``ImagePullBackOff``, forever), ``Unschedulable`` (a MutatingAdmissionPolicy adds a node
  selector no node matches, so the real scheduler reports ``PodScheduled=False/Unschedulable``),
  ``OOMKilled`` (terminated, exit code 137, reason ``OOMKilled``) or ``Evicted`` (phase
  ``Failed``, reason ``Evicted``).

``restartPolicy`` is honoured: ``Never`` ends in ``Succeeded``/``Failed``; ``OnFailure`` restarts a
non-zero exit with ``CrashLoopBackOff`` and a growing ``restartCount``; ``Always`` restarts every
exit, and an unannotated ``Always`` pod simply stays ``Running``. ``kubectl exec`` runs the
command on this machine (kwok's local exec) in a scratch directory.

Network safety: every component listens on and dials only 127.0.0.1, on ports picked free at
start; kwok runs with ``--node-ip=127.0.0.1``; the pod IPs kwok invents are never contacted.

Importing this module loads only the standard library; a start talks to the API server through
podrunner's own Kubernetes backend (so it loads the ``kubernetes`` client then) and reads the
Stage files with ``yaml``.
``python -m podrunner.testing.controlplane.kwok`` starts a cluster, prints its kubeconfig path
and waits for Ctrl-C.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from podrunner.errors import AlreadyExists, BackendError
from podrunner.simulation import ANNOTATION_FAILURE
from podrunner.testing.controlplane._common import (
    LOOPBACK,
    ClusterStartError,
    ClusterUnavailable,
    answers,
    connect,
    poll,
)
from podrunner.testing.controlplane._logagent import LogAgent, cri_log_lines
from podrunner.testing.controlplane._pki import ec_private_key_pem
from podrunner.testing.controlplane._procs import Proc, free_port
from podrunner.testing.controlplane._stages import (
    NO_LOGS_OBJECT_FILE,
    NO_LOGS_OBJECT_LINE,
    SEED_OBJECTS,
    kwok_config,
    node_manifest,
    node_stages_yaml,
    seed_object,
)

if TYPE_CHECKING:
    from podrunner.backends.kubernetes import KubernetesBackend

__all__ = [
    "BUILD_COMMAND",
    "NODE_NAME",
    "VERSIONS",
    "KwokCluster",
    "default_bin_dir",
    "main",
]

#: Versions built by ``python -m podrunner.testing.controlplane build`` (its ``versions.json``).
VERSIONS: Mapping[str, str] = json.loads(
    (Path(__file__).resolve().parent / "versions.json").read_text("utf-8")
)
#: The command that builds the binaries, as the errors and skip messages print it.
BUILD_COMMAND = "python -m podrunner.testing.controlplane build"

NODE_NAME = "kwok-node-0"
_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
_ADMIN_USER = "podrunner-admin"
# A dry-run pod the Unschedulable admission policy must mutate before the cluster is ready.
_UNSCHEDULABLE_PROBE = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "generateName": "podrunner-probe-",
        "annotations": {ANNOTATION_FAILURE: "Unschedulable"},
    },
    "spec": {"containers": [{"name": "probe", "image": "probe"}]},
}


def default_bin_dir() -> Path:
    """Return where :data:`BUILD_COMMAND` puts the binaries for :data:`VERSIONS`.

    ``$PODRUNNER_CONTROLPLANE_BIN`` overrides the whole path; ``$PODRUNNER_CONTROLPLANE_CACHE``
    overrides the cache root (default ``$XDG_CACHE_HOME/podrunner/controlplane``, i.e.
    ``~/.cache/podrunner/controlplane``).
    """
    explicit = os.environ.get("PODRUNNER_CONTROLPLANE_BIN")
    if explicit:
        return Path(explicit)
    root = os.environ.get("PODRUNNER_CONTROLPLANE_CACHE")
    if root:
        base = Path(root)
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = Path(cache) / "podrunner" / "controlplane"
    key = f"k8s-{VERSIONS['kubernetes']}_etcd-{VERSIONS['etcd']}_kwok-{VERSIONS['kwok']}"
    return base / key / "bin"


class _Ports:
    """Ports picked free on 127.0.0.1 for one start."""

    def __init__(self) -> None:
        self.etcd, self.etcd_peer, self.api, self.node = (free_port() for _ in range(4))
        self.etcd_url = f"http://{LOOPBACK}:{self.etcd}"
        self.etcd_peer_url = f"http://{LOOPBACK}:{self.etcd_peer}"


def _condition_true(
    api: KubernetesBackend, path: str, condition: str
) -> tuple[bool, dict[str, Any]]:
    """GET ``path``; return whether its status condition is True, and the object."""
    obj = api.request("GET", path)
    conditions = obj.get("status", {}).get("conditions", [])
    ready = any(c.get("type") == condition and c.get("status") == "True" for c in conditions)
    return ready, obj


class KwokCluster:
    """A local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok).

    Args:
        bin_dir: Directory holding ``etcd``, ``kube-apiserver``, ``kube-controller-manager``,
            ``kube-scheduler`` and ``kwok``; default :func:`default_bin_dir`.
        workdir: Directory for data, certificates, kubeconfig and logs; default a new temporary
            directory, removed by :meth:`stop` unless the start failed or ``keep_workdir``.
        start_timeout: Seconds :meth:`start` may take before it fails.
        keep_workdir: Keep the work directory (logs, etcd data) after :meth:`stop`.
        node_name: Name of the single kwok node.

    Attributes:
        start_seconds: How long the last :meth:`start` took.
    """

    def __init__(
        self,
        bin_dir: str | os.PathLike[str] | None = None,
        *,
        workdir: str | os.PathLike[str] | None = None,
        start_timeout: float = 90.0,
        keep_workdir: bool = False,
        node_name: str = NODE_NAME,
    ) -> None:
        self._bin_dir = Path(bin_dir) if bin_dir is not None else default_bin_dir()
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self.start_timeout = start_timeout
        self.keep_workdir = keep_workdir
        self.node_name = node_name
        self.start_seconds: float | None = None
        self._workdir: Path | None = None
        self._procs: list[Proc] = []
        self._api: KubernetesBackend | None = None
        self._agent: LogAgent | None = None
        self.api_ready_at: float | None = None
        """When (``time.monotonic()``) the API server answered ``/readyz`` after the last
        :meth:`restart`: the end of the outage for clients (kwok may still be catching up)."""
        self._server: str | None = None
        self._kubeconfig: Path | None = None
        self._token = secrets.token_hex(24)
        self._started = False
        self._failed = False

    # -- properties ---------------------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        """Directory the binaries are taken from."""
        return self._bin_dir

    @property
    def kubeconfig(self) -> Path:
        """Path of the private kubeconfig (valid after :meth:`start`)."""
        if self._kubeconfig is None:
            raise RuntimeError("KwokCluster is not started")
        return self._kubeconfig

    @property
    def server(self) -> str:
        """The API server URL, ``https://127.0.0.1:<port>`` (valid after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("KwokCluster is not started")
        return self._server

    @property
    def workdir(self) -> Path:
        """Directory with data, certificates, the kubeconfig and the component logs."""
        if self._workdir is None:
            raise RuntimeError("KwokCluster is not started")
        return self._workdir

    @property
    def pids(self) -> dict[str, int]:
        """PIDs of the processes this object started, by component name."""
        return {p.name: p.pid for p in self._procs}

    # -- lifecycle ----------------------------------------------------------------------------

    def missing_binaries(self) -> list[str]:
        """Return the names of required binaries that are not in :attr:`bin_dir`."""
        return [b for b in _BINARIES if not os.access(self._bin_dir / b, os.X_OK)]

    def start(self) -> KwokCluster:
        """Start every component and wait until the cluster is usable.

        Returns:
            This object.

        Raises:
            ClusterUnavailable: the binaries are not built (run :data:`BUILD_COMMAND`).
            ClusterStartError: a component exited or readiness timed out; the message includes
                the tails of the component logs, which stay in :attr:`workdir`.
        """
        if self._started:
            return self
        missing = self.missing_binaries()
        if missing:
            raise ClusterUnavailable(
                f"control-plane binaries missing in {self._bin_dir}: {', '.join(missing)}; "
                f"build them with `{BUILD_COMMAND}` (needs Go >= 1.26, 8-10 min once)"
            )
        began = time.monotonic()
        deadline = began + self.start_timeout
        if self._workdir_arg is not None:
            self._workdir = self._workdir_arg
            self._workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="podrunner-kwok-"))
        atexit.register(self.stop)
        try:
            self._start(deadline)
        except BaseException as exc:
            self._failed = True
            message = self._failure_report(exc)
            self.stop()
            if isinstance(exc, ClusterStartError):
                raise ClusterStartError(message) from exc
            raise
        self._started = True
        self.start_seconds = time.monotonic() - began
        return self

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        env.pop("KUBECONFIG", None)
        return env

    def _spawn(self, name: str, args: list[str]) -> Proc:
        assert self._workdir is not None
        proc = Proc(
            name,
            [str(self._bin_dir / name.split(":")[0]), *args],
            self._workdir / "logs" / f"{name}.log",
            self._env(),
        )
        self._procs.append(proc)
        return proc

    def _check_alive(self) -> None:
        for proc in self._procs:
            if not proc.alive():
                raise ClusterStartError(
                    f"{proc.name} (pid {proc.pid}) exited with code {proc.popen.returncode}"
                )

    def _start(self, deadline: float) -> None:
        pki = self._prepare_workdir()
        ports = _Ports()
        self._start_etcd(ports)
        api = self._start_apiserver(ports, pki, deadline)
        self._seed_objects(api)
        self._start_controllers(pki)
        self._start_kwok(api, ports, pki, deadline)
        self._wait_ready(api, deadline)

    def _prepare_workdir(self) -> Path:
        """Create the work directory's layout, the service-account key and the token file."""
        work = self.workdir
        for sub in ("logs", "pki", "etcd", "exec", "pod-logs"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        (work / "etcd").chmod(0o700)
        pki = work / "pki"
        sa_key = pki / "sa.key"
        sa_key.write_bytes(ec_private_key_pem())
        sa_key.chmod(0o600)
        tokens = pki / "tokens.csv"
        tokens.write_text(f'{self._token},{_ADMIN_USER},{_ADMIN_USER},"system:masters"\n')
        tokens.chmod(0o600)
        (work / "pod-logs" / "empty.log").touch()
        no_logs_object = work / "pod-logs" / NO_LOGS_OBJECT_FILE
        no_logs_object.write_text(cri_log_lines(NO_LOGS_OBJECT_LINE + "\n"), encoding="utf-8")
        return pki

    def _start_etcd(self, ports: _Ports) -> None:
        self._spawn(
            "etcd",
            [
                "--name=podrunner",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={ports.etcd_url}",
                f"--advertise-client-urls={ports.etcd_url}",
                f"--listen-peer-urls={ports.etcd_peer_url}",
                f"--initial-advertise-peer-urls={ports.etcd_peer_url}",
                f"--initial-cluster=podrunner={ports.etcd_peer_url}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync=true",
                "--quota-backend-bytes=1073741824",
                "--auto-compaction-retention=1",
                "--log-level=warn",
            ],
        )

    def _start_apiserver(self, ports: _Ports, pki: Path, deadline: float) -> KubernetesBackend:
        """Start kube-apiserver; return a client once it is ready and the kubeconfigs exist."""
        self._server = f"https://{LOOPBACK}:{ports.api}"
        self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={ports.etcd_url}",
                f"--bind-address={LOOPBACK}",
                f"--advertise-address={LOOPBACK}",
                f"--secure-port={ports.api}",
                f"--cert-dir={pki}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.key'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=true",
                "--kubelet-preferred-address-types=InternalIP",
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                "--enable-priority-and-fairness=false",
                "--v=1",
            ],
        )
        ca_file = pki / "apiserver.crt"

        def cert_written() -> bool:
            self._check_alive()
            return ca_file.exists()

        poll(
            cert_written, deadline=deadline, what="kube-apiserver to write its serving certificate"
        )
        self._write_kubeconfigs(ca_file)
        api = self._api = connect(self.workdir / "admin.kubeconfig", timeout=5.0)

        def readyz() -> bool:
            self._check_alive()
            return answers(api, "/readyz")

        poll(readyz, deadline=deadline, what="kube-apiserver /readyz")
        return api

    def _seed_objects(self, api: KubernetesBackend) -> None:
        """Create the objects kwok and the tests need, before kwok starts."""
        self._create(api, "/api/v1/nodes", node_manifest(self.node_name))
        for path, name in SEED_OBJECTS:
            self._create(api, path, seed_object(name))

    def _start_controllers(self, pki: Path) -> None:
        admin = str(self.workdir / "admin.kubeconfig")
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={admin}",
                "--leader-elect=false",
                f"--bind-address={LOOPBACK}",
                "--secure-port=0",
                "--controllers=serviceaccount-controller,serviceaccount-token-controller,"
                "garbage-collector-controller,namespace-controller,"
                "root-ca-certificate-publisher-controller,pod-garbage-collector-controller,"
                "node-lifecycle-controller,"
                "job-controller,ttl-after-finished-controller,"
                # Binds claims to volumes, so pods that mount a claim get scheduled.
                "persistentvolume-binder-controller",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'apiserver.crt'}",
                "--use-service-account-credentials=false",
                "--v=1",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                f"--kubeconfig={admin}",
                f"--authentication-kubeconfig={admin}",
                f"--authorization-kubeconfig={admin}",
                "--leader-elect=false",
                f"--bind-address={LOOPBACK}",
                "--secure-port=0",
                "--v=1",
            ],
        )

    def _start_kwok(
        self, api: KubernetesBackend, ports: _Ports, pki: Path, deadline: float
    ) -> None:
        """Start kwok once its Logs CRD is established, then the log agent beside it."""
        crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/logs.kwok.x-k8s.io"
        poll(
            lambda: _condition_true(api, crd_path, "Established")[0],
            deadline=deadline,
            what="the kwok Logs CRD to be established",
        )
        work = self.workdir
        config = work / "kwok.yaml"
        docs = [
            json.dumps(doc, indent=1)
            for doc in kwok_config(work / "exec", work / "pod-logs" / "empty.log")
        ]
        config.write_text("\n---\n".join([node_stages_yaml().strip(), *docs]) + "\n")
        self._spawn(
            "kwok",
            [
                f"--kubeconfig={work / 'admin.kubeconfig'}",
                f"--config={config}",
                "--manage-all-nodes=true",
                f"--node-ip={LOOPBACK}",
                "--node-name=localhost",
                f"--node-port={ports.node}",
                f"--server-address={LOOPBACK}:{ports.node}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                "--node-lease-duration-seconds=40",
                "--cidr=10.244.0.0/16",
                "--enable-crds=Logs",
            ],
        )
        self._agent = LogAgent(api, work / "pod-logs")
        self._agent.start()

    def _wait_ready(self, api: KubernetesBackend, deadline: float) -> None:
        """Wait for the node, the default ServiceAccount and the Unschedulable policy."""

        def node_ready() -> bool:
            self._check_alive()
            ready, body = _condition_true(api, f"/api/v1/nodes/{self.node_name}", "Ready")
            # The node-lifecycle controller lifts the not-ready taint the apiserver puts on new
            # nodes; until then nothing can be scheduled.
            return ready and not body.get("spec", {}).get("taints")

        poll(node_ready, deadline=deadline, what=f"node {self.node_name} to be Ready and untainted")

        def default_sa() -> bool:
            self._check_alive()
            return answers(api, "/api/v1/namespaces/default/serviceaccounts/default")

        poll(default_sa, deadline=deadline, what="serviceaccount default/default")

        def policy_active() -> bool:
            self._check_alive()
            pod = api.create(_UNSCHEDULABLE_PROBE, dry_run=True)
            return "sim.podrunner.dev/unschedulable" in pod["spec"].get("nodeSelector", {})

        poll(policy_active, deadline=deadline, what="the Unschedulable admission policy")

    @staticmethod
    def _create(api: KubernetesBackend, path: str, manifest: dict[str, Any]) -> None:
        try:
            api.request("POST", path, body=manifest)
        except AlreadyExists:
            pass
        except BackendError as exc:
            raise ClusterStartError(f"POST {path}: {exc}") from exc

    def _write_kubeconfigs(self, ca_file: Path) -> None:
        ca_data = base64.b64encode(ca_file.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kwok",
                    "cluster": {"server": self.server, "certificate-authority-data": ca_data},
                }
            ],
            "users": [{"name": _ADMIN_USER, "user": {"token": self._token}}],
            "contexts": [{"name": "kwok", "context": {"cluster": "kwok", "user": _ADMIN_USER}}],
            "current-context": "kwok",
            "preferences": {},
        }
        for name in ("kubeconfig", "admin.kubeconfig"):
            path = self.workdir / name
            path.write_text(json.dumps(config, indent=2) + "\n")
            path.chmod(0o600)
        self._kubeconfig = self.workdir / "kubeconfig"

    def _failure_report(self, exc: BaseException) -> str:
        lines = [f"kwok control plane did not start: {exc}"]
        if self._workdir is not None:
            lines.append(f"logs kept in {self._workdir / 'logs'}")
        for proc in self._procs:
            state = "running" if proc.alive() else f"exited {proc.popen.returncode}"
            lines.append(f"--- {proc.name} (pid {proc.pid}, {state}) last lines:")
            lines.append(proc.tail() or "(no output)")
        return "\n".join(lines)

    def stop(self) -> None:
        """Stop every process this object started (by PID, newest first) and clean up.

        Safe to call twice and after a failed :meth:`start`. The work directory is removed unless
        the start failed or ``keep_workdir`` is set.
        """
        if self._agent is not None:
            self._agent.stop()
            self._agent = None
        if self._api is not None:
            self._api.close()
            self._api = None
        for proc in reversed(self._procs):
            if proc.name == "etcd":
                continue
            proc.stop()
        for proc in self._procs:
            if proc.name == "etcd":
                proc.stop()
        self._procs = []
        self._started = False
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if (
            self._workdir is not None
            and self._workdir_arg is None
            and not self.keep_workdir
            and not self._failed
        ):
            shutil.rmtree(self._workdir, ignore_errors=True)

    # -- faults (see podrunner.testing.controlplane.faults) ------------------------------------

    def restart(
        self, component: str, *, hard: bool = False, downtime: float = 0.0, timeout: float = 60.0
    ) -> float:
        """Stop one component and start it again with the same flags and data.

        Args:
            component: One of :data:`~podrunner.testing.controlplane.faults.COMPONENTS`.
            hard: SIGKILL instead of SIGTERM (no graceful shutdown).
            downtime: Seconds to stay down between the stop and the start.
            timeout: Seconds to wait until the component is ready again.

        Returns:
            Seconds from the stop until the component was ready again.

        Raises:
            ValueError: unknown component.
            ClusterStartError: it did not become ready within ``timeout``.
        """
        from podrunner.testing.controlplane import faults

        index = faults.component_index(self._procs, component)
        began = time.monotonic()
        old = self._procs[index]
        old.stop(hard=hard)
        if component == "kwok":
            self._release_node_lease()
        time.sleep(downtime)
        self._procs[index] = Proc(old.name, old.argv, old.log_path, old.env)
        self.api_ready_at = faults.wait_ready(
            self._api, self._procs[index], deadline=began + timeout
        )
        return time.monotonic() - began

    def _release_node_lease(self) -> None:
        """Delete the node's lease after kwok stopped.

        A kubelet renews its own node lease after a restart; a new kwok holds another identity
        and would leave pods alone until the old lease expires (40 s).
        """
        if self._api is None:
            return
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node_name}"
        with contextlib.suppress(BackendError):  # NotFound, or the server is down: kwok waits
            self._api.request("DELETE", path)

    def pause(self, component: str) -> None:
        """Freeze a component with SIGSTOP (a stalled server); :meth:`resume` thaws it."""
        from podrunner.testing.controlplane import faults

        os.kill(self._procs[faults.component_index(self._procs, component)].pid, signal.SIGSTOP)

    def resume(self, component: str) -> None:
        """Thaw a component frozen by :meth:`pause` (SIGCONT)."""
        from podrunner.testing.controlplane import faults

        os.kill(self._procs[faults.component_index(self._procs, component)].pid, signal.SIGCONT)

    def write_logs(
        self,
        namespace: str,
        pod: str,
        text: str,
        *,
        container: str | None = None,
        stream: str = "stdout",
    ) -> None:
        """Append ``text`` to a pod's container log (all containers if ``container`` is None).

        The text is served by ``pods/log`` like the ``sim.podrunner.dev/logs`` annotation.

        Raises:
            LookupError: no such pod or container.
        """
        if self._agent is None:
            raise RuntimeError("KwokCluster is not started")
        self._agent.append(namespace, pod, text, container, stream)

    @property
    def log_agent_errors(self) -> list[str]:
        """Recent errors of the background log writer (for diagnostics)."""
        return list(self._agent.errors) if self._agent is not None else []

    def __enter__(self) -> KwokCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"server={self._server!r}" if self._started else "stopped"
        return f"KwokCluster(bin_dir={str(self._bin_dir)!r}, {state})"


def main(argv: list[str] | None = None) -> int:
    """Start a cluster, print its kubeconfig path, and wait for Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m podrunner.testing.controlplane.kwok", description=main.__doc__
    )
    parser.add_argument("--bin-dir", help="directory with the control-plane binaries")
    parser.add_argument("--workdir", help="work directory (kept); default: a temporary one")
    args = parser.parse_args(argv)
    cluster = KwokCluster(args.bin_dir, workdir=args.workdir)
    try:
        cluster.start()
    except (ClusterUnavailable, ClusterStartError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    try:
        print(f"kwok cluster ready in {cluster.start_seconds:.1f} s", flush=True)
        print(f"server:     {cluster.server}")
        print(f"kubeconfig: {cluster.kubeconfig}")
        print(f"pids:       {cluster.pids}")
        print(f"  kubectl --kubeconfig {cluster.kubeconfig} get nodes,pods -A")
        print("Ctrl-C stops it.", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
