"""A real Kubernetes control plane on 127.0.0.1 with kwok-simulated nodes, for tests without Docker.

:class:`KwokCluster` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
from binaries built by ``python -m podrunner.testing.controlplane build`` (pinned versions, see
:data:`VERSIONS`),
waits until the API server is ready, the kwok node is Ready and the ``default`` ServiceAccount
exists, and writes a private kubeconfig::

    with KwokCluster() as cluster:
        run_tests(kubeconfig=cluster.kubeconfig)

Pods are scheduled by the real kube-scheduler onto one kwok node; kwok plays the kubelet. The
Stages installed here implement podrunner's simulation annotations (see DESIGN.md):

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

This module imports only the standard library at import time (``yaml`` is imported lazily to
read foreign kubeconfigs); it never imports ``kubernetes``. ``python -m podrunner.testing.kwok``
starts a cluster, prints its kubeconfig path and waits for Ctrl-C.
"""

from __future__ import annotations

import atexit
import base64
import concurrent.futures
import contextlib
import datetime as _dt
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from podrunner.testing.kind import ClusterStartError, ClusterUnavailable

__all__ = [
    "ANNOTATION_DURATION",
    "ANNOTATION_EXIT_CODE",
    "ANNOTATION_FAILURE",
    "ANNOTATION_LOGS",
    "BUILD_COMMAND",
    "VERSIONS",
    "ClusterStartError",
    "ClusterUnavailable",
    "KwokCluster",
    "default_bin_dir",
    "wait_for_api",
]

#: Versions built by ``python -m podrunner.testing.controlplane build`` (its ``versions.json``).
VERSIONS: Mapping[str, str] = json.loads(
    (Path(__file__).resolve().parent / "controlplane" / "versions.json").read_text("utf-8")
)
#: The command that builds the binaries, as the errors and skip messages print it.
BUILD_COMMAND = "python -m podrunner.testing.controlplane build"

ANNOTATION_EXIT_CODE = "sim.podrunner.dev/exit-code"
ANNOTATION_DURATION = "sim.podrunner.dev/duration"
ANNOTATION_LOGS = "sim.podrunner.dev/logs"
ANNOTATION_FAILURE = "sim.podrunner.dev/failure"

LOOPBACK = "127.0.0.1"
NODE_NAME = "kwok-node-0"
_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
_ADMIN_USER = "podrunner-admin"


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


# ---------------------------------------------------------------------------------------------
# Small helpers: ports, keys, time
# ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _ec_private_key_pem() -> bytes:
    """Return a fresh P-256 private key as SEC1 PEM, using only the standard library.

    Go derives the public point from the scalar, so the optional public-key field is omitted.
    """
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    scalar = (secrets.randbelow(order - 1) + 1).to_bytes(32, "big")
    oid_prime256v1 = bytes.fromhex("06082a8648ce3d030107")
    body = (
        b"\x02\x01\x01"
        + b"\x04"
        + _der_length(len(scalar))
        + scalar
        + b"\xa0"
        + _der_length(len(oid_prime256v1))
        + oid_prime256v1
    )
    der = b"\x30" + _der_length(len(body)) + body
    b64 = base64.encodebytes(der).replace(b"\n", b"")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (
        b"-----BEGIN EC PRIVATE KEY-----\n"
        + b"\n".join(lines)
        + b"\n-----END EC PRIVATE KEY-----\n"
    )


def _rfc3339_nano(moment: _dt.datetime | None = None) -> str:
    moment = moment or _dt.datetime.now(_dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def cri_log_lines(text: str, stream: str = "stdout", moment: _dt.datetime | None = None) -> str:
    """Format ``text`` as CRI container-log lines (what the kubelet's log reader accepts).

    Each line becomes ``<RFC3339Nano> <stream> F <line>``; a last line without a trailing
    newline is tagged ``P`` (partial), so it is served back without an added newline.

    Args:
        text: The log text.
        stream: ``stdout`` or ``stderr``.
        moment: Timestamp for every line; default now (UTC).
    """
    if not text:
        return ""
    stamp = _rfc3339_nano(moment)
    parts = text.split("\n")
    out: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last and part == "":
            break
        tag = "P" if last else "F"
        out.append(f"{stamp} {stream} {tag} {part}\n")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# A minimal Kubernetes REST client (urllib), used for readiness and setup
# ---------------------------------------------------------------------------------------------


class _Api:
    """Just enough of a Kubernetes REST client: JSON requests and watch streams."""

    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        ca_file: Path | None = None,
        ca_data: bytes | None = None,
        client_cert: tuple[Path, Path] | None = None,
        insecure: bool = False,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.context: ssl.SSLContext | None = None
        if self.server.startswith("https://"):
            ctx = ssl.create_default_context()
            if insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif ca_file is not None:
                ctx.load_verify_locations(cafile=str(ca_file))
            elif ca_data is not None:
                ctx.load_verify_locations(cadata=ca_data.decode())
            if client_cert is not None:
                ctx.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
            self.context = ctx
        # Never through a proxy: these requests go to 127.0.0.1 (or the kubeconfig's server).
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.context)
        )

    @classmethod
    def from_kubeconfig(cls, path: Path, scratch: Path) -> _Api:
        """Build a client from a kubeconfig's current context (token or client certificate)."""
        import yaml  # lazy: only needed for kubeconfigs this module did not write

        config = yaml.safe_load(path.read_text()) or {}

        def named(section: str, name: str) -> dict[str, Any]:
            for item in config.get(section) or []:
                if item.get("name") == name:
                    return dict(item.get(section[:-1]) or {})
            raise ClusterStartError(f"kubeconfig {path}: no {section[:-1]} named {name!r}")

        context = named("contexts", config.get("current-context", ""))
        cluster = named("clusters", context.get("cluster", ""))
        user = named("users", context.get("user", ""))
        ca_data = None
        if cluster.get("certificate-authority-data"):
            ca_data = base64.b64decode(cluster["certificate-authority-data"])
        elif cluster.get("certificate-authority"):
            ca_data = Path(cluster["certificate-authority"]).read_bytes()
        client_cert = None
        if user.get("client-certificate-data") or user.get("client-certificate"):
            cert = scratch / "client.crt"
            key = scratch / "client.key"
            if user.get("client-certificate-data"):
                cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
            else:
                shutil.copyfile(user["client-certificate"], cert)
            if user.get("client-key-data"):
                key.write_bytes(base64.b64decode(user["client-key-data"]))
            else:
                shutil.copyfile(user["client-key"], key)
            key.chmod(0o600)
            client_cert = (cert, key)
        return cls(
            str(cluster.get("server", "")),
            token=user.get("token"),
            ca_data=ca_data,
            client_cert=client_cert,
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
        )

    def _request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> urllib.request.Request:
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = self.server + path
        return urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """Send one request; return ``(status, decoded JSON body or None)``; 4xx/5xx don't raise."""
        request = self._request(method, path, body, content_type)
        try:
            with self._opener.open(request, timeout=timeout) as resp:
                raw = resp.read()
                status = int(resp.status)
        except urllib.error.HTTPError as err:
            raw = err.read()
            status = err.code
            err.close()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def watch(self, path: str, timeout: float = 60.0) -> _WatchStream:
        """Open a watch stream (``path`` must carry ``watch=1``)."""
        parsed = urllib.parse.urlsplit(self.server)
        conn: http.client.HTTPConnection
        if parsed.scheme == "https":
            conn = http.client.HTTPSConnection(
                parsed.hostname or LOOPBACK, parsed.port, timeout=timeout, context=self.context
            )
        else:
            conn = http.client.HTTPConnection(
                parsed.hostname or LOOPBACK, parsed.port, timeout=timeout
            )
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        if resp.status != 200:
            body = resp.read().decode(errors="replace")
            conn.close()
            raise OSError(f"watch {path}: HTTP {resp.status}: {body[:200]}")
        return _WatchStream(conn, resp)


class _WatchStream:
    """An open watch; :meth:`abort` may be called from another thread to end it at once."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self.conn = conn
        self.resp = resp
        self.sock = conn.sock

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield decoded watch events until the server ends the stream."""
        for line in self.resp:
            if line.strip():
                yield json.loads(line)

    def abort(self) -> None:
        """Shut the socket down, which wakes a reader blocked in another thread."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the connection (from the reading thread)."""
        with contextlib.suppress(Exception):
            self.conn.close()


def _poll(
    check: Any,
    *,
    deadline: float,
    what: str,
    interval: float = 0.1,
    errors: list[str] | None = None,
) -> Any:
    """Call ``check()`` until it returns a truthy value; raise ClusterStartError at the deadline."""
    last = ""
    while True:
        try:
            result = check()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            result = None
            last = f"{type(exc).__name__}: {exc}"
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last})" if last else ""
            if errors is not None:
                errors.append(f"timed out waiting for {what}{detail}")
            raise ClusterStartError(f"timed out waiting for {what}{detail}")
        time.sleep(interval)


def wait_for_api(
    kubeconfig: str | os.PathLike[str],
    *,
    deadline: float,
    what: str = "the API server",
    namespace: str = "default",
) -> None:
    """Wait until the kubeconfig's API server is ready and ``serviceaccount/default`` exists.

    Args:
        kubeconfig: Path of a kubeconfig file (token or client-certificate credentials).
        deadline: ``time.monotonic()`` value after which to give up.
        what: Name used in the timeout message.
        namespace: Namespace whose ``default`` ServiceAccount must exist.

    Raises:
        ClusterStartError: the deadline passed first.
    """
    with tempfile.TemporaryDirectory(prefix="podrunner-kubeconfig-") as scratch:
        api = _Api.from_kubeconfig(Path(kubeconfig), Path(scratch))
        _poll(
            lambda: api.call("GET", "/readyz")[0] == 200, deadline=deadline, what=f"{what} /readyz"
        )
        sa_path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
        _poll(
            lambda: api.call("GET", sa_path)[0] == 200,
            deadline=deadline,
            what=f"{what}: serviceaccount {namespace}/default",
        )


# ---------------------------------------------------------------------------------------------
# Manifests: kwok config (Stages, ClusterLogs, ClusterExec), Node, CRD, admission policy
# ---------------------------------------------------------------------------------------------

_POD_HEADER = """\
{{ $now := Now }}
{{ $root := . }}
{{ $ann := .metadata.annotations | default (dict) }}
{{ $failure := get $ann "sim.podrunner.dev/failure" }}
{{ $names := list }}{{ range .spec.containers }}{{ $names = append $names .name }}{{ end }}
{{ $unready := printf "containers with unready status: [%s]" (join " " $names) }}
"""

_COND = """\
- type: {type}
  status: "{status}"
  lastProbeTime: null
  lastTransitionTime: {{{{ $now | Quote }}}}
"""


def _cond(type_: str, status: str, reason: str = "", message: str = "") -> str:
    text = _COND.format(type=type_, status=status)
    if reason:
        text += f"  reason: {reason}\n"
    if message:
        text += f"  message: {message}\n"
    return text


def _pending_template(waiting_reason: str, waiting_message: str) -> str:
    message = f"\n      message: {waiting_message}" if waiting_message else ""
    return (
        _POD_HEADER + "{{ $podIP := PodIPWith .spec.nodeName (or .spec.hostNetwork false) "
        '(or .metadata.uid "") (or .metadata.name "") (or .metadata.namespace "") }}\n'
        + "conditions:\n"
        + _cond("PodReadyToStartContainers", "True")
        + _cond("Initialized", "True")
        + _cond("Ready", "False", "ContainersNotReady", "{{ $unready | Quote }}")
        + _cond("ContainersReady", "False", "ContainersNotReady", "{{ $unready | Quote }}")
        + """\
{{ with .spec.initContainers }}
initContainerStatuses:
{{ range . }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  imageID: ""
  ready: true
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  imageID: ""
  ready: false
  restartCount: 0
  started: false
  state:
    waiting:
      reason: WAITING_REASON"""
        + message
        + """
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
hostIPs:
- ip: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ $podIP | Quote }}
podIPs:
- ip: {{ $podIP | Quote }}
startTime: {{ $now | Quote }}
phase: Pending
"""
    ).replace("WAITING_REASON", waiting_reason)


_RUNNING_TEMPLATE = (
    _POD_HEADER
    + "conditions:\n"
    + _cond("Ready", "True")
    + _cond("ContainersReady", "True")
    + """\
containerStatuses:
{{ range $index, $item := .spec.containers }}
{{ $origin := index $root.status.containerStatuses $index }}
- name: {{ $item.name | Quote }}
  image: {{ $item.image | Quote }}
  imageID: {{ printf "sha256:%s" (sha256sum $item.image) | Quote }}
  {{ $run := printf "%s/%s/%v" $root.metadata.uid $item.name ($origin.restartCount | default 0) }}
  containerID: {{ printf "containerd://%s" (sha256sum $run) | Quote }}
  ready: true
  started: true
  restartCount: {{ $origin.restartCount | default 0 }}
  {{ with $origin.lastState }}lastState: {{ toJson . }}{{ end }}
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Running
"""
)

_TERMINATE_TEMPLATE = (
    _POD_HEADER
    + """\
{{ $code := get $ann "sim.podrunner.dev/exit-code" | default "0" | atoi }}
{{ $reason := "Completed" }}
{{ $message := "" }}
{{ if eq $failure "OOMKilled" }}{{ $code = 137 }}{{ $reason = "OOMKilled" }}
{{ else if eq $failure "Evicted" }}{{ $code = 137 }}{{ $reason = "Error" }}
{{ else if ne $code 0 }}{{ $reason = "Error" }}{{ end }}
{{ $policy := .spec.restartPolicy | default "Always" }}
{{ $phase := "Running" }}
{{ if eq $failure "Evicted" }}{{ $phase = "Failed" }}
{{ else if eq $policy "Never" }}{{ $phase = ternary "Succeeded" "Failed" (eq $code 0) }}
{{ else if eq $policy "OnFailure" }}{{ if eq $code 0 }}{{ $phase = "Succeeded" }}{{ end }}{{ end }}
{{ $terminal := ne $phase "Running" }}
{{ $why := ternary "PodCompleted" "ContainersNotReady" $terminal }}
{{ $evictMsg := "The node was low on resource: memory. " }}
{{ $evictMsg = print $evictMsg "Threshold quantity: 100Mi, available: 10Mi. " }}
conditions:
- type: PodReadyToStartContainers
  status: {{ ternary "False" "True" $terminal | Quote }}
  lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
- type: Ready
  status: "False"
  reason: {{ $why }}
  {{ if not $terminal }}message: {{ $unready | Quote }}{{ end }}
  lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
- type: ContainersReady
  status: "False"
  reason: {{ $why }}
  {{ if not $terminal }}message: {{ $unready | Quote }}{{ end }}
  lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
{{ if eq $failure "Evicted" }}
- type: DisruptionTarget
  status: "True"
  reason: TerminationByKubelet
  message: {{ $evictMsg | Quote }}
  lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
{{ end }}
containerStatuses:
{{ range $index, $item := .spec.containers }}
{{ $origin := index $root.status.containerStatuses $index }}
- name: {{ $item.name | Quote }}
  image: {{ $item.image | Quote }}
  imageID: {{ $origin.imageID | default "" | Quote }}
  containerID: {{ $origin.containerID | default "" | Quote }}
  ready: false
  started: false
  restartCount: {{ $origin.restartCount | default 0 }}
  {{ with $origin.lastState }}lastState: {{ toJson . }}{{ end }}
  state:
    terminated:
      exitCode: {{ $code }}
      reason: {{ $reason }}
      startedAt: {{ $origin.state.running.startedAt | Quote }}
      finishedAt: {{ $now | Quote }}
      containerID: {{ $origin.containerID | default "" | Quote }}
{{ end }}
{{ if eq $failure "Evicted" }}
reason: Evicted
message: {{ $evictMsg | Quote }}
{{ end }}
phase: {{ $phase }}
"""
)

_RESTART_TEMPLATE = (
    _POD_HEADER
    + """\
containerStatuses:
{{ range $index, $item := .spec.containers }}
{{ $origin := index $root.status.containerStatuses $index }}
{{ $pod := printf "%s_%s(%s)" $root.metadata.name $root.metadata.namespace $root.metadata.uid }}
{{ $msg := printf "back-off 10s restarting failed container=%s pod=%s" $item.name $pod }}
- name: {{ $item.name | Quote }}
  image: {{ $item.image | Quote }}
  imageID: {{ $origin.imageID | default "" | Quote }}
  ready: false
  started: false
  restartCount: {{ add1 ($origin.restartCount | default 0) }}
  lastState:
    terminated: {{ toJson $origin.state.terminated }}
  state:
    waiting:
      reason: CrashLoopBackOff
      message: {{ $msg | Quote }}
{{ end }}
phase: Running
"""
)

_IMAGE_BACKOFF_TEMPLATE = (
    _POD_HEADER
    + """\
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  imageID: ""
  ready: false
  restartCount: 0
  started: false
  state:
    waiting:
      reason: ImagePullBackOff
      message: {{ printf "Back-off pulling image %q" .image | Quote }}
{{ end }}
"""
)

_NOT_DELETED = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
_FAILURE_KEY = '.metadata.annotations["sim.podrunner.dev/failure"]'
# A pod's container terminates unless it is an unannotated restartPolicy=Always pod.
_SHOULD_TERMINATE = (
    '(.spec.restartPolicy != "Always") or ((.metadata.annotations // {}) | '
    '(has("sim.podrunner.dev/exit-code") or has("sim.podrunner.dev/duration") or '
    '((.["sim.podrunner.dev/failure"] // "") == "OOMKilled") or '
    '((.["sim.podrunner.dev/failure"] // "") == "Evicted")))'
)


def _stage(
    name: str,
    selector: list[dict[str, Any]],
    template: str | None,
    *,
    delay_ms: int,
    delay_from: str | None = None,
    event: tuple[str, str, str] | None = None,
    delete: bool = False,
) -> dict[str, Any]:
    delay: dict[str, Any] = {"durationMilliseconds": delay_ms}
    if delay_from:
        delay["durationFrom"] = {"expressionFrom": delay_from}
    next_: dict[str, Any] = {}
    if template is not None:
        next_["statusTemplate"] = template
    if event is not None:
        next_["event"] = {"type": event[0], "reason": event[1], "message": event[2]}
    if delete:
        next_["delete"] = True
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": selector},
            "delay": delay,
            "next": next_,
        },
    }


def pod_stages() -> list[dict[str, Any]]:
    """Return the kwok Pod Stages that implement the simulation annotations.

    The stages are mutually exclusive (kwok picks one matching stage per object state):
    create (Pending) -> running -> terminate -> [restart -> running -> ...], the image-pull
    failure branch, and delete.
    """
    return [
        _stage(
            "podrunner-pod-create",
            [
                _NOT_DELETED,
                {"key": ".status.podIP", "operator": "DoesNotExist"},
                {"key": _FAILURE_KEY, "operator": "NotIn", "values": ["ImagePullBackOff"]},
            ],
            _pending_template("ContainerCreating", ""),
            delay_ms=300,
            event=("Normal", "Pulled", "Container image already present on machine"),
        ),
        _stage(
            "podrunner-pod-err-image-pull",
            [
                _NOT_DELETED,
                {"key": ".status.podIP", "operator": "DoesNotExist"},
                {"key": _FAILURE_KEY, "operator": "In", "values": ["ImagePullBackOff"]},
            ],
            _pending_template(
                "ErrImagePull",
                '{{ printf "failed to pull and unpack image %q: not found" .image | Quote }}',
            ),
            delay_ms=300,
            event=("Warning", "Failed", "Error: ErrImagePull"),
        ),
        _stage(
            "podrunner-pod-image-pull-backoff",
            [
                _NOT_DELETED,
                {
                    "key": ".status.containerStatuses.[].state.waiting.reason",
                    "operator": "In",
                    "values": ["ErrImagePull"],
                },
            ],
            _IMAGE_BACKOFF_TEMPLATE,
            delay_ms=500,
            event=("Warning", "Failed", "Error: ImagePullBackOff"),
        ),
        _stage(
            "podrunner-pod-running",
            [
                _NOT_DELETED,
                {"key": ".status.phase", "operator": "In", "values": ["Pending", "Running"]},
                {
                    "key": ".status.containerStatuses.[].state.waiting.reason",
                    "operator": "In",
                    "values": ["ContainerCreating", "CrashLoopBackOff"],
                },
            ],
            _RUNNING_TEMPLATE,
            delay_ms=500,
            delay_from=(
                "if ([.status.containerStatuses[]?.state.waiting.reason]"
                ' | index("CrashLoopBackOff")) != null then "2s" else "500ms" end'
            ),
            event=("Normal", "Started", "Started container"),
        ),
        _stage(
            "podrunner-pod-terminate",
            [
                _NOT_DELETED,
                {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                {
                    "key": ".status.containerStatuses.[].state.running.startedAt",
                    "operator": "Exists",
                },
                {"key": _SHOULD_TERMINATE, "operator": "In", "values": ["true"]},
            ],
            _TERMINATE_TEMPLATE,
            delay_ms=1000,
            delay_from='(.metadata.annotations["sim.podrunner.dev/duration"] // empty) + "s"',
        ),
        _stage(
            "podrunner-pod-restart",
            [
                _NOT_DELETED,
                {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                {"key": ".status.containerStatuses.[].state.terminated", "operator": "Exists"},
            ],
            _RESTART_TEMPLATE,
            delay_ms=200,
            event=("Warning", "BackOff", "Back-off restarting failed container"),
        ),
        _stage(
            "podrunner-pod-delete",
            [
                {"key": ".metadata.deletionTimestamp", "operator": "Exists"},
                {"key": ".metadata.finalizers", "operator": "DoesNotExist"},
            ],
            None,
            delay_ms=200,
            delete=True,
        ),
    ]


# kwok drops its default node stages as soon as the config holds any Stage, so the two it would
# use (node-initialize from the "fast" set, node-heartbeat-with-lease) are copied verbatim from
# sigs.k8s.io/kwok v0.8.0 kustomize/stage/node (Apache License 2.0).
NODE_STAGES_YAML = r"""
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values:
      - 'True'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type  | Quote}}
      {{ end }}

      {{ $hasInternalIP := false }}
      {{ $hasHostname := false }}
      {{ range .status.addresses }}
        {{ if eq .type "InternalIP" }}
          {{ $hasInternalIP = true }}
        {{ end }}
        {{ if eq .type "Hostname" }}
          {{ $hasHostname = true }}
        {{ end }}
      {{ end }}
      {{ if or (not $hasInternalIP) (not $hasHostname) }}
      addresses:
      {{ end }}
      {{ if not $hasInternalIP }}
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ end }}
      {{ if not $hasHostname }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      {{ end }}

      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}

      allocatable:
      {{ with .status.allocatable }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      capacity:
      {{ with .status.capacity }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}

      {{ $nodeInfo := .status.nodeInfo }}
      {{ $kwokVersion := printf "kwok-%s" Version }}
      nodeInfo:
        architecture: {{ or $nodeInfo.architecture "amd64" }}
        bootID: {{ or $nodeInfo.bootID `""` }}
        containerRuntimeVersion: {{ or $nodeInfo.containerRuntimeVersion $kwokVersion }}
        kernelVersion: {{ or $nodeInfo.kernelVersion $kwokVersion }}
        kubeProxyVersion: {{ or $nodeInfo.kubeProxyVersion $kwokVersion }}
        kubeletVersion: {{ or $nodeInfo.kubeletVersion $kwokVersion }}
        machineID: {{ or $nodeInfo.machineID `""` }}
        operatingSystem: {{ or $nodeInfo.operatingSystem "linux" }}
        osImage: {{ or $nodeInfo.osImage `""` }}
        systemUUID: {{ or $nodeInfo.systemUUID `""` }}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat-with-lease
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values:
      - 'True'
  delay:
    durationMilliseconds: 600000
    jitterDurationMilliseconds: 610000
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}

      addresses:
      {{ with .status.addresses }}
      {{ YAML . 1 }}
      {{ else }}
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      {{ end }}

      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}
"""


def _kwok_config(exec_dir: Path, default_log: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = pod_stages()
    docs.append(
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterExec",
            "metadata": {"name": "podrunner-local-exec"},
            "spec": {
                "execs": [
                    {
                        "local": {
                            "workDir": str(exec_dir),
                            "envs": [{"name": "PODRUNNER_KWOK_EXEC", "value": "1"}],
                        }
                    }
                ]
            },
        }
    )
    docs.append(
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": "podrunner-empty-logs"},
            "spec": {
                "logs": [{"logsFile": str(default_log), "previousLogsFile": str(default_log)}]
            },
        }
    )
    return docs


_LOGS_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "logs.kwok.x-k8s.io"},
    "spec": {
        "group": "kwok.x-k8s.io",
        "names": {"kind": "Logs", "listKind": "LogsList", "plural": "logs", "singular": "logs"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
                "subresources": {"status": {}},
            }
        ],
    },
}

_UNSCHEDULABLE_POLICY: dict[str, Any] = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "MutatingAdmissionPolicy",
    "metadata": {"name": "podrunner-sim-unschedulable"},
    "spec": {
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE"],
                    "resources": ["pods"],
                }
            ]
        },
        "matchConditions": [
            {
                "name": "annotated-unschedulable",
                "expression": (
                    "has(object.metadata.annotations) && "
                    "'sim.podrunner.dev/failure' in object.metadata.annotations && "
                    "object.metadata.annotations['sim.podrunner.dev/failure'] == 'Unschedulable'"
                ),
            }
        ],
        "failurePolicy": "Fail",
        "reinvocationPolicy": "Never",
        "mutations": [
            {
                # nodeSelector is an atomic map, which ApplyConfiguration may not touch.
                "patchType": "JSONPatch",
                "jsonPatch": {
                    "expression": (
                        "has(object.spec.nodeSelector) ? "
                        '[JSONPatch{op: "add", '
                        'path: "/spec/nodeSelector/sim.podrunner.dev~1unschedulable", '
                        'value: "true"}] : '
                        '[JSONPatch{op: "add", path: "/spec/nodeSelector", '
                        'value: {"sim.podrunner.dev/unschedulable": "true"}}]'
                    )
                },
            }
        ],
    },
}

_UNSCHEDULABLE_BINDING: dict[str, Any] = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "MutatingAdmissionPolicyBinding",
    "metadata": {"name": "podrunner-sim-unschedulable"},
    "spec": {"policyName": "podrunner-sim-unschedulable"},
}


def _node_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "spec": {},
    }


# ---------------------------------------------------------------------------------------------
# Log agent: turns sim.podrunner.dev/logs into log files kwok serves through pods/log
# ---------------------------------------------------------------------------------------------


class _LogAgent:
    """Watches pods; for each one writes per-container CRI log files and a kwok ``Logs`` object.

    The ``Logs`` object is created when the pod appears; the annotated text is appended when a
    container starts (and again on each restart, after rotating the previous run's file), so
    ``follow`` streams opened early see it arrive.
    """

    def __init__(self, api: _Api, root: Path) -> None:
        self.api = api
        self.root = root
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watch: _WatchStream | None = None
        self._seen: dict[str, tuple[str, str]] = {}  # uid -> (namespace, name)
        self._runs: dict[tuple[str, str], int] = {}  # (uid, container) -> restartCount written
        self._thread = threading.Thread(target=self._run, name="podrunner-kwok-logs", daemon=True)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            8, thread_name_prefix="podrunner-kwok-logs"
        )
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        stream = self._watch
        if stream is not None:
            stream.abort()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def pod_dir(self, namespace: str, name: str, uid: str) -> Path:
        return self.root / namespace / f"{name}_{uid}"

    def log_file(self, namespace: str, name: str, uid: str, container: str) -> Path:
        return self.pod_dir(namespace, name, uid) / f"{container}.log"

    def _run(self) -> None:
        resource_version = ""
        while not self._stop.is_set():
            try:
                if not resource_version:
                    status, body = self.api.call("GET", "/api/v1/pods")
                    if status != 200:
                        raise OSError(f"list pods: HTTP {status}")
                    for pod in body.get("items", []):
                        self.handle("ADDED", pod)
                    resource_version = body["metadata"]["resourceVersion"]
                query = urllib.parse.urlencode(
                    {
                        "watch": "1",
                        "resourceVersion": resource_version,
                        "allowWatchBookmarks": "true",
                        "timeoutSeconds": "300",
                    }
                )
                stream = self._watch = self.api.watch(f"/api/v1/pods?{query}", timeout=330)
                if self._stop.is_set():
                    return
                try:
                    for event in stream.events():
                        if self._stop.is_set():
                            return
                        obj = event.get("object") or {}
                        if event.get("type") == "ERROR":
                            resource_version = ""  # 410 Gone: relist
                            break
                        resource_version = obj.get("metadata", {}).get("resourceVersion", "")
                        if event.get("type") != "BOOKMARK":
                            self.handle(str(event.get("type")), obj)
                finally:
                    stream.close()
            except Exception as exc:  # keep the agent alive; record for diagnostics
                if self._stop.is_set():
                    return
                self.errors.append(f"{type(exc).__name__}: {exc}")
                del self.errors[:-20]
                resource_version = ""
                self._stop.wait(0.5)

    def handle(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        namespace, name, uid = meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", "")
        if not (namespace and name and uid):
            return
        containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        if kind == "DELETED":
            self._forget(namespace, name, uid)
            return
        text = (meta.get("annotations") or {}).get(ANNOTATION_LOGS)
        with self._lock:
            new = uid not in self._seen
            if new:
                self._seen[uid] = (namespace, name)
                self._prepare_files(namespace, name, uid, containers, text)
        if new:
            # Creating kwok's Logs object is an API round trip; doing it on the event thread
            # let logs land after a busy cluster's pods had already finished. The files are
            # written first (the text is known from the annotation), the objects in parallel.
            self._pool.submit(self._register_safely, namespace, name, uid, containers)
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            running = (status.get("state") or {}).get("running")
            if not running:
                continue
            container = status.get("name", "")
            run = int(status.get("restartCount") or 0)
            key = (uid, container)
            with self._lock:
                if self._runs.get(key, -1) >= run:
                    continue
                path = self.log_file(namespace, name, uid, container)
                if run > 0 and path.exists():
                    path.replace(path.with_suffix(".previous.log"))
                    path.touch()
                self._runs[key] = run
                if text:
                    with path.open("a", encoding="utf-8") as fh:
                        fh.write(cri_log_lines(text))

    def _prepare_files(
        self, namespace: str, name: str, uid: str, containers: list[str], text: str | None
    ) -> None:
        """Create the log files; the first run's text is written at once (lock held)."""
        directory = self.pod_dir(namespace, name, uid)
        directory.mkdir(parents=True, exist_ok=True)
        for container in containers:
            current = directory / f"{container}.log"
            (directory / f"{container}.previous.log").touch()
            with current.open("a", encoding="utf-8") as fh:
                if text:
                    fh.write(cri_log_lines(text))
            self._runs[(uid, container)] = 0

    def _register_safely(self, namespace: str, name: str, uid: str, containers: list[str]) -> None:
        # Retried: an API server restart must not leave a pod without its Logs object (kwok
        # would serve it an empty log). A pod that is gone by then needs none.
        deadline = time.monotonic() + 60
        while not self._stop.is_set():
            try:
                if self._register(namespace, name, uid, containers):
                    return
            except Exception as exc:  # keep the agent alive; record for diagnostics
                self.errors.append(f"apply Logs {namespace}/{name}: {type(exc).__name__}: {exc}")
            with self._lock:
                if uid not in self._seen or time.monotonic() > deadline:
                    return
            self._stop.wait(0.5)

    def _register(self, namespace: str, name: str, uid: str, containers: list[str]) -> bool:
        directory = self.pod_dir(namespace, name, uid)
        logs = []
        for container in containers:
            current = directory / f"{container}.log"
            previous = directory / f"{container}.previous.log"
            logs.append(
                {
                    "containers": [container],
                    "logsFile": str(current),
                    "previousLogsFile": str(previous),
                }
            )
        manifest = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Logs",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"podrunner.dev/pod-uid": uid},
            },
            "spec": {"logs": logs},
        }
        path = f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{namespace}/logs/{name}"
        query = "?fieldManager=podrunner-kwok&force=true"
        status, body = self.api.call(
            "PATCH", path + query, manifest, content_type="application/apply-patch+yaml"
        )
        if status >= 300:
            self.errors.append(f"apply Logs {namespace}/{name}: HTTP {status}: {body}")
        return status < 300

    def _forget(self, namespace: str, name: str, uid: str) -> None:
        with self._lock:
            self._seen.pop(uid, None)
            for key in [k for k in self._runs if k[0] == uid]:
                del self._runs[key]
            still_used = any(v == (namespace, name) for v in self._seen.values())
        if not still_used:
            path = f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{namespace}/logs/{name}"
            status, body = self.api.call("GET", path)
            labels = (body or {}).get("metadata", {}).get("labels", {}) if status == 200 else {}
            if labels.get("podrunner.dev/pod-uid") == uid:
                self.api.call("DELETE", path)
        shutil.rmtree(self.pod_dir(namespace, name, uid), ignore_errors=True)

    def append(
        self, namespace: str, name: str, text: str, container: str | None, stream: str
    ) -> None:
        status, pod = self.api.call("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        if status != 200:
            raise LookupError(f"pod {namespace}/{name} not found (HTTP {status})")
        uid = pod["metadata"]["uid"]
        containers = [c["name"] for c in pod["spec"]["containers"]]
        with self._lock:
            if uid not in self._seen:
                self._seen[uid] = (namespace, name)
                self._register(namespace, name, uid, containers)
        targets = [container] if container else containers
        for target in targets:
            if target not in containers:
                raise LookupError(f"pod {namespace}/{name} has no container {target!r}")
            with self.log_file(namespace, name, uid, target).open("a", encoding="utf-8") as fh:
                fh.write(cri_log_lines(text, stream))


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the child when the parent dies, so a crash leaks no control plane."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: S110 - best effort; stop() still kills by PID
        pass


class _Proc:
    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self._log: IO[bytes] = log_path.open("ab")
        # Linux sends the death signal when the *thread* that forked the child ends, not the
        # process: a component restarted from a worker thread would be killed when that
        # thread returns. Such children rely on stop() and atexit alone.
        on_main = threading.current_thread() is threading.main_thread()
        preexec = _set_pdeathsig if sys.platform.startswith("linux") and on_main else None
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=preexec,
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0, *, hard: bool = False) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                # A paused (SIGSTOPped) process would hold a SIGTERM pending forever.
                self.popen.send_signal(signal.SIGCONT)
                self.popen.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                self.popen.wait(timeout=10)
        self._log.close()

    def tail(self, lines: int = 15) -> str:
        try:
            data = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(data.strip().splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# The cluster
# ---------------------------------------------------------------------------------------------


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
        self._procs: list[_Proc] = []
        self._api: _Api | None = None
        self._agent: _LogAgent | None = None
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

    def _spawn(self, name: str, args: list[str]) -> _Proc:
        assert self._workdir is not None
        proc = _Proc(
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
        work = self.workdir
        for sub in ("logs", "pki", "etcd", "exec", "pod-logs"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        (work / "etcd").chmod(0o700)
        pki = work / "pki"
        sa_key = pki / "sa.key"
        sa_key.write_bytes(_ec_private_key_pem())
        sa_key.chmod(0o600)
        tokens = pki / "tokens.csv"
        tokens.write_text(f'{self._token},{_ADMIN_USER},{_ADMIN_USER},"system:masters"\n')
        tokens.chmod(0o600)
        default_log = work / "pod-logs" / "empty.log"
        default_log.touch()

        etcd_port, etcd_peer = _free_port(), _free_port()
        api_port, node_port = _free_port(), _free_port()
        etcd_url = f"http://{LOOPBACK}:{etcd_port}"
        self._spawn(
            "etcd",
            [
                "--name=podrunner",
                f"--data-dir={work / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://{LOOPBACK}:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://{LOOPBACK}:{etcd_peer}",
                f"--initial-cluster=podrunner=http://{LOOPBACK}:{etcd_peer}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync=true",
                "--quota-backend-bytes=1073741824",
                "--auto-compaction-retention=1",
                "--log-level=warn",
            ],
        )
        self._server = f"https://{LOOPBACK}:{api_port}"
        self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                f"--bind-address={LOOPBACK}",
                f"--advertise-address={LOOPBACK}",
                f"--secure-port={api_port}",
                f"--cert-dir={pki}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
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

        _poll(
            cert_written,
            deadline=deadline,
            what="kube-apiserver to write its serving certificate",
        )
        api = self._api = _Api(self._server, token=self._token, ca_file=ca_file)

        def readyz() -> bool:
            self._check_alive()
            return api.call("GET", "/readyz", timeout=5)[0] == 200

        _poll(readyz, deadline=deadline, what="kube-apiserver /readyz")
        self._write_kubeconfigs(ca_file)

        # Objects kwok and the tests need, before kwok starts.
        self._create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", _LOGS_CRD)
        self._create("/api/v1/nodes", _node_manifest(self.node_name))
        self._create(
            "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies", _UNSCHEDULABLE_POLICY
        )
        self._create(
            "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings",
            _UNSCHEDULABLE_BINDING,
        )

        admin = str(work / "admin.kubeconfig")
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
                "job-controller,ttl-after-finished-controller",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={ca_file}",
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

        crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/logs.kwok.x-k8s.io"

        def crd_established() -> bool:
            status, body = api.call("GET", crd_path)
            conditions = (
                (body or {}).get("status", {}).get("conditions", []) if status == 200 else []
            )
            return any(
                c.get("type") == "Established" and c.get("status") == "True" for c in conditions
            )

        _poll(crd_established, deadline=deadline, what="the kwok Logs CRD to be established")

        config = work / "kwok.yaml"
        docs = [json.dumps(doc, indent=1) for doc in _kwok_config(work / "exec", default_log)]
        config.write_text("\n---\n".join([NODE_STAGES_YAML.strip(), *docs]) + "\n")
        self._spawn(
            "kwok",
            [
                f"--kubeconfig={admin}",
                f"--config={config}",
                "--manage-all-nodes=true",
                f"--node-ip={LOOPBACK}",
                "--node-name=localhost",
                f"--node-port={node_port}",
                f"--server-address={LOOPBACK}:{node_port}",
                f"--tls-cert-file={ca_file}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                "--node-lease-duration-seconds=40",
                "--cidr=10.244.0.0/16",
                "--enable-crds=Logs",
            ],
        )
        self._agent = _LogAgent(api, work / "pod-logs")
        self._agent.start()

        node_path = f"/api/v1/nodes/{self.node_name}"

        def node_ready() -> bool:
            self._check_alive()
            status, body = api.call("GET", node_path)
            conditions = (
                (body or {}).get("status", {}).get("conditions", []) if status == 200 else []
            )
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            # The node-lifecycle controller lifts the not-ready taint the apiserver puts on new
            # nodes; until then nothing can be scheduled.
            return ready and not (body or {}).get("spec", {}).get("taints")

        _poll(
            node_ready, deadline=deadline, what=f"node {self.node_name} to be Ready and untainted"
        )

        def default_sa() -> bool:
            self._check_alive()
            return api.call("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200

        _poll(default_sa, deadline=deadline, what="serviceaccount default/default")

        probe = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": "podrunner-probe-",
                "annotations": {ANNOTATION_FAILURE: "Unschedulable"},
            },
            "spec": {"containers": [{"name": "probe", "image": "probe"}]},
        }

        def policy_active() -> bool:
            self._check_alive()
            status, body = api.call("POST", "/api/v1/namespaces/default/pods?dryRun=All", probe)
            selector = (body or {}).get("spec", {}).get("nodeSelector", {}) if status < 300 else {}
            return "sim.podrunner.dev/unschedulable" in selector

        _poll(policy_active, deadline=deadline, what="the Unschedulable admission policy")

    def _create(self, path: str, manifest: dict[str, Any]) -> None:
        assert self._api is not None
        status, body = self._api.call("POST", path, manifest)
        if status not in (200, 201, 409):
            raise ClusterStartError(f"POST {path}: HTTP {status}: {body}")

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

    # -- faults (see podrunner.testing.faults) --------------------------------------------------

    def restart(
        self, component: str, *, hard: bool = False, downtime: float = 0.0, timeout: float = 60.0
    ) -> float:
        """Stop one component and start it again with the same flags and data.

        Args:
            component: One of :data:`~podrunner.testing.faults.COMPONENTS`.
            hard: SIGKILL instead of SIGTERM (no graceful shutdown).
            downtime: Seconds to stay down between the stop and the start.
            timeout: Seconds to wait until the component is ready again.

        Returns:
            Seconds from the stop until the component was ready again.

        Raises:
            ValueError: unknown component.
            ClusterStartError: it did not become ready within ``timeout``.
        """
        from podrunner.testing import faults

        index = faults.component_index(self._procs, component)
        began = time.monotonic()
        old = self._procs[index]
        old.stop(hard=hard)
        time.sleep(downtime)
        self._procs[index] = _Proc(old.name, old.argv, old.log_path, old.env)
        faults.wait_ready(self, self._procs[index], deadline=began + timeout)
        return time.monotonic() - began

    def pause(self, component: str) -> None:
        """Freeze a component with SIGSTOP (a stalled server); :meth:`resume` thaws it."""
        from podrunner.testing import faults

        os.kill(self._procs[faults.component_index(self._procs, component)].pid, signal.SIGSTOP)

    def resume(self, component: str) -> None:
        """Thaw a component frozen by :meth:`pause` (SIGCONT)."""
        from podrunner.testing import faults

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
        prog="python -m podrunner.testing.kwok", description=main.__doc__
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
