"""KindCluster against a stand-in ``kind`` executable that records its arguments."""

from __future__ import annotations

import http.server
import json
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from podrunner.testing.controlplane import ClusterStartError, ClusterUnavailable, KindCluster

STAND_IN = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    state = os.environ["FAKE_KIND_STATE"]
    args = sys.argv[1:]
    with open(state + ".calls", "a") as fh:
        fh.write(json.dumps(args) + "\\n")
    clusters = open(state).read().split() if os.path.exists(state) else []
    def save():
        open(state, "w").write("\\n".join(clusters))
    def opt(name):
        return args[args.index(name) + 1]
    if args[:2] == ["get", "clusters"]:
        print("\\n".join(clusters))
    elif args[:2] == ["create", "cluster"]:
        if os.environ.get("FAKE_KIND_FAIL"):
            print("ERROR: failed to create cluster: boom", file=sys.stderr)
            sys.exit(1)
        clusters.append(opt("--name")); save()
    elif args[:2] == ["get", "kubeconfig"]:
        print(os.environ["FAKE_KIND_KUBECONFIG"])
    elif args[:2] == ["delete", "cluster"]:
        clusters.remove(opt("--name")); save()
    elif args[:2] == ["load", "docker-image"]:
        pass
    else:
        sys.exit(2)
    """
)

DOCKER = "#!/bin/sh\necho 27.0.0\n"


class _Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path in ("/readyz", "/api/v1/namespaces/default/serviceaccounts/default")
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[str]:
    """A tiny local HTTP server answering readiness and the default ServiceAccount."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def fake_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_server: str) -> Path:
    """Put a stand-in ``kind`` and ``docker`` first on PATH; return the state file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kind = bin_dir / "kind"
    kind.write_text(STAND_IN.format(python=sys.executable))
    kind.chmod(0o755)
    docker = bin_dir / "docker"
    docker.write_text(DOCKER)
    docker.chmod(0o755)
    state = tmp_path / "clusters"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": api_server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_KIND_STATE", str(state))
    monkeypatch.setenv("FAKE_KIND_KUBECONFIG", json.dumps(kubeconfig))
    return state


def calls(state: Path) -> list[list[str]]:
    """The argument lists the stand-in kind received, in order."""
    path = Path(str(state) + ".calls")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_creates_missing_cluster_and_deletes_it_on_stop(fake_kind: Path) -> None:
    """A cluster that did not exist is created, used through a private kubeconfig, then deleted."""
    cluster = KindCluster("t1", image="kindest/node:v1.35.0@sha256:abc")
    with cluster:
        assert cluster.created
        assert json.loads(cluster.kubeconfig.read_text())["current-context"] == "x"
        assert oct(cluster.kubeconfig.stat().st_mode & 0o777) == "0o600"
    argv = calls(fake_kind)
    create = next(a for a in argv if a[:2] == ["create", "cluster"])
    assert create[create.index("--name") + 1] == "t1"
    assert create[create.index("--image") + 1] == "kindest/node:v1.35.0@sha256:abc"
    assert "--wait" in create
    assert "--kubeconfig" in create
    assert argv[-1] == ["delete", "cluster", "--name", "t1"]


def test_reuses_existing_cluster_and_never_deletes_it(fake_kind: Path) -> None:
    """A cluster that already exists is reused and left alone on stop."""
    fake_kind.write_text("t2")
    with KindCluster("t2") as cluster:
        assert not cluster.created
    argv = calls(fake_kind)
    assert not any(a[:2] == ["create", "cluster"] for a in argv)
    assert not any(a[:2] == ["delete", "cluster"] for a in argv)
    assert ["get", "kubeconfig", "--name", "t2"] in argv


def test_keep_leaves_a_created_cluster(fake_kind: Path) -> None:
    """keep=True skips deleting a cluster this object created."""
    with KindCluster("t3", keep=True) as cluster:
        assert cluster.created
    assert not any(a[:2] == ["delete", "cluster"] for a in calls(fake_kind))
    assert fake_kind.read_text().split() == ["t3"]


def test_load_image_passes_the_cluster_name(fake_kind: Path) -> None:
    """load_image runs ``kind load docker-image IMAGE --name NAME``."""
    with KindCluster("t4") as cluster:
        cluster.load_image("myapp:test-1")
    assert ["load", "docker-image", "myapp:test-1", "--name", "t4"] in calls(fake_kind)


def test_failed_create_raises_with_kind_output(
    fake_kind: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing ``kind create cluster`` raises ClusterStartError with kind's stderr."""
    monkeypatch.setenv("FAKE_KIND_FAIL", "1")
    with pytest.raises(ClusterStartError, match="boom"):
        KindCluster("t5").start()
    assert not any(a[:2] == ["delete", "cluster"] for a in calls(fake_kind))


def test_without_kind_raises_cluster_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No kind on PATH: a one-line ClusterUnavailable naming kind."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClusterUnavailable, match="kind is not installed") as info:
        KindCluster("t6").start()
    assert "\n" not in str(info.value)


def test_without_docker_raises_cluster_unavailable(
    fake_kind: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With kind but no Docker engine: a one-line ClusterUnavailable naming Docker."""
    (fake_kind.parent / "bin" / "docker").write_text(
        "#!/bin/sh\necho 'Cannot connect' >&2\nexit 1\n"
    )
    with pytest.raises(ClusterUnavailable, match="no Docker engine") as info:
        KindCluster("t7").start()
    assert "\n" not in str(info.value)
    assert calls(fake_kind) == []
