"""Pure parts of the kwok control plane: pinned versions, stages, log format, keys, imports."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from podrunner.testing import controlplane
from podrunner.testing.controlplane import _logagent, _pki, _stages, kwok

ROOT = Path(__file__).resolve().parents[2]


def test_versions_match_the_build_script() -> None:
    """KwokCluster looks for the binaries build.py makes: the pinned versions agree."""
    pinned = json.loads(
        (ROOT / "src" / "podrunner" / "testing" / "controlplane" / "versions.json").read_text()
    )
    assert dict(kwok.VERSIONS) == pinned


def test_default_bin_dir_follows_the_cache_overrides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The cache root and the bin dir can be overridden by environment variables."""
    monkeypatch.delenv("PODRUNNER_CONTROLPLANE_BIN", raising=False)
    monkeypatch.setenv("PODRUNNER_CONTROLPLANE_CACHE", str(tmp_path))
    key = "k8s-{kubernetes}_etcd-{etcd}_kwok-{kwok}".format(**kwok.VERSIONS)
    assert kwok.default_bin_dir() == tmp_path / key / "bin"
    monkeypatch.setenv("PODRUNNER_CONTROLPLANE_BIN", str(tmp_path / "b"))
    assert kwok.default_bin_dir() == tmp_path / "b"


def test_build_script_and_kwok_agree_on_the_bin_dir(tmp_path: Path) -> None:
    """``build.py --print-bin-dir`` prints the directory KwokCluster uses by default."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "controlplane" / "build.py"), "--print-bin-dir"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    key = "k8s-{kubernetes}_etcd-{etcd}_kwok-{kwok}".format(**kwok.VERSIONS)
    assert out == str(tmp_path / ".cache" / "podrunner" / "controlplane" / key / "bin")


def test_cri_log_lines_full_and_partial_lines() -> None:
    """Lines become CRI records; a last line without newline is tagged partial."""
    text = _logagent.cri_log_lines("a\nb\nc", "stderr")
    lines = text.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "stderr F a",
        "stderr F b",
        "stderr P c",
    ]
    stamp = lines[0].split(" ", 1)[0]
    assert stamp.endswith("Z")
    assert len(stamp.split(".")[1]) == 10  # nine fraction digits and the Z
    assert _logagent.cri_log_lines("") == ""
    assert _logagent.cri_log_lines("x\n").endswith(" stdout F x\n")


def test_ec_private_key_is_sec1_p256() -> None:
    """The generated service-account key is a SEC1 P-256 key with a 32-byte scalar."""
    pem = _pki.ec_private_key_pem().decode()
    assert pem.startswith("-----BEGIN EC PRIVATE KEY-----\n")
    body = "".join(pem.strip().splitlines()[1:-1])
    der = base64.b64decode(body)
    assert der[0] == 0x30
    assert der[2:5] == b"\x02\x01\x01"
    assert der[5:7] == b"\x04\x20"
    assert der[-10:] == bytes.fromhex("06082a8648ce3d030107")
    assert _pki.ec_private_key_pem() != _pki.ec_private_key_pem()


def test_stages_cover_each_step_once() -> None:
    """Every pod stage has a unique name, a selector that skips or needs deletion, and a next."""
    stages = _stages.pod_stages()
    names = [s["metadata"]["name"] for s in stages]
    assert len(set(names)) == len(names)
    for stage in stages:
        spec = stage["spec"]
        assert spec["resourceRef"] == {"apiGroup": "v1", "kind": "Pod"}
        keys = {e["key"] for e in spec["selector"]["matchExpressions"]}
        assert ".metadata.deletionTimestamp" in keys
        assert spec["next"]
    terminate = next(s for s in stages if s["metadata"]["name"] == "podrunner-pod-terminate")
    template = terminate["spec"]["next"]["statusTemplate"]
    for needle in ("sim.podrunner.dev/exit-code", "OOMKilled", "Evicted", "restartPolicy"):
        assert needle in template
    assert (
        "sim.podrunner.dev/duration" in terminate["spec"]["delay"]["durationFrom"]["expressionFrom"]
    )


def test_kwok_config_keeps_node_stages() -> None:
    """The node stages kwok would drop are shipped with the pod stages."""
    assert "name: node-initialize" in _stages.node_stages_yaml()
    assert "name: node-heartbeat-with-lease" in _stages.node_stages_yaml()
    docs = _stages.kwok_config(Path("/x/exec"), Path("/x/empty.log"))
    kinds = [d["kind"] for d in docs]
    assert "ClusterExec" in kinds
    assert "ClusterLogs" in kinds
    assert "KwokConfiguration" not in kinds  # an empty one would zero kwok's defaults


def test_missing_binaries_is_a_clear_unavailable_error(tmp_path: Path) -> None:
    """Without built binaries start() names them and the build command, starting nothing."""
    cluster = kwok.KwokCluster(tmp_path)
    assert set(cluster.missing_binaries()) == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }
    with pytest.raises(
        controlplane.ClusterUnavailable, match=r"python -m podrunner\.testing\.controlplane build"
    ):
        cluster.start()
    assert cluster.pids == {}


def test_import_does_not_load_the_kubernetes_client() -> None:
    """Importing the kwok and kind modules never imports ``kubernetes``."""
    code = (
        "import sys, podrunner.testing.controlplane.kwok, podrunner.testing.controlplane.kind; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_control_planes_are_exported_where_users_look() -> None:
    """podrunner.testing and podrunner.testing.controlplane name the same two classes."""
    import podrunner.testing
    from podrunner.testing.controlplane import KindCluster, KwokCluster

    assert podrunner.testing.KwokCluster is KwokCluster is kwok.KwokCluster
    assert podrunner.testing.KindCluster is KindCluster
    assert {"KwokCluster", "KindCluster"} <= set(podrunner.testing.__all__)
