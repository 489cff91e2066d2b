"""KwokCluster's own lifecycle: start time, loopback-only listeners, no process left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from podrunner.testing.controlplane import ClusterStartError, KwokCluster, default_bin_dir

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _kwok_only(backend_name: str) -> None:
    """These tests are about the kwok control plane itself."""
    if backend_name != "kwok":
        pytest.skip("kwok control-plane lifecycle tests")


def alive(pid: int) -> bool:
    """True if ``pid`` is a live (non-zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def listening_ports(pids: set[int]) -> list[str]:
    """Local addresses the given processes listen on (from ``ss``), or skip without ss."""
    try:
        out = subprocess.run(
            ["ss", "-Htlnp"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("ss is not available")
    return [
        line.split()[3] for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids)
    ]


@pytest.fixture
def built(kwok_cluster: KwokCluster) -> Path:
    """The bin dir, built (the session cluster fixture builds what is missing)."""
    return kwok_cluster.bin_dir


def test_listens_only_on_loopback(kwok_cluster: KwokCluster) -> None:
    """Every socket the control plane listens on is bound to 127.0.0.1."""
    addresses = listening_ports(set(kwok_cluster.pids.values()))
    assert addresses
    assert all(a.startswith("127.0.0.1:") for a in addresses), addresses
    assert kwok_cluster.server.startswith("https://127.0.0.1:")


def test_second_cluster_starts_and_stop_leaves_nothing(built: Path, tmp_path: Path) -> None:
    """A second cluster starts beside the first, and stop() ends every process it started.

    How long a start takes is measured by ``benchmarks/bench_kwok.py`` (``cluster_start_s``).
    """
    cluster = KwokCluster(built)
    with cluster:
        pids = dict(cluster.pids)
        workdir = cluster.workdir
        assert set(pids) == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
        }
        assert all(alive(pid) for pid in pids.values())
    assert not any(alive(pid) for pid in pids.values())
    assert not workdir.exists()


def test_failed_start_stops_what_it_started_and_reports_logs(built: Path, tmp_path: Path) -> None:
    """A component that dies at start: the error quotes its log; nothing is left running."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("etcd", "kube-controller-manager", "kube-scheduler", "kwok"):
        os.symlink(built / name, bin_dir / name)
    broken = bin_dir / "kube-apiserver"
    broken.write_text("#!/bin/sh\necho 'kube-apiserver: simulated crash' >&2\nexit 3\n")
    broken.chmod(0o755)
    cluster = KwokCluster(bin_dir, start_timeout=30)
    with pytest.raises(ClusterStartError, match="simulated crash") as info:
        cluster.start()
    assert "kube-apiserver" in str(info.value)
    assert "exited with code 3" in str(info.value)
    etcd_log = cluster.workdir / "logs" / "etcd.log"
    assert etcd_log.exists()  # logs are kept after a failed start
    assert cluster.pids == {}
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert str(cluster.workdir) not in out.stdout
    shutil.rmtree(cluster.workdir)


def test_default_bin_dir_is_where_the_fixture_built(built: Path) -> None:
    """The session fixture uses the default bin dir unless overridden."""
    if os.environ.get("PODRUNNER_CONTROLPLANE_BIN"):
        pytest.skip("bin dir overridden")
    assert built == default_bin_dir()
