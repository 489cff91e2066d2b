"""Results out (``run(collect=...)``) through PodRunner on the fake and on kwok.

On both, the API server admits the pod with its collector (dry run), and the copy goes through
the backend's exec. kwok runs no container: its local exec runs the machine's ``tar`` in a
directory of this machine that the test fills (the fake answers with an exec handler), so the
tar stream comes back through the real API server's exec websocket.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podrunner import Collect, CollectFailed, PodRunner, PodSpec, build_manifests
from podrunner.backends.base import Backend
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.run.collect import with_collector
from podrunner.testing import FakeCluster

pytestmark = pytest.mark.integration

SPEC = PodSpec(
    "busybox:1.36",
    ["sh", "-c", "echo done > /out/report.txt"],
    annotations={"sim.podrunner.dev/logs": "ok\n", "sim.podrunner.dev/duration": "1"},
)


def managed(backend: Backend, namespace: str) -> list[str]:
    out = []
    for kind in ("Pod", "Secret", "ConfigMap"):
        listed = backend.list(kind, namespace, label_selector=MANAGED_SELECTOR)  # type: ignore[arg-type]
        out += [f"{kind}/{o['metadata']['name']}" for o in listed.items]
    return out


@pytest.fixture
def runner(
    podrunner_runner: PodRunner, podrunner_backend: Backend, podrunner_namespace: str
) -> Iterator[PodRunner]:
    yield podrunner_runner
    clock = podrunner_backend.clock
    deadline = clock.monotonic() + 60
    while managed(podrunner_backend, podrunner_namespace) and clock.monotonic() < deadline:
        clock.sleep(0.5)
    assert managed(podrunner_backend, podrunner_namespace) == []


def test_the_pod_with_its_collector_is_admitted(
    podrunner_backend: Backend, podrunner_namespace: str
) -> None:
    manifests = with_collector(build_manifests(SPEC), Collect(["/out/**"]), total=600)
    pod = dict(manifests.pod)
    pod["metadata"] = {**pod["metadata"], "namespace": podrunner_namespace}
    created = podrunner_backend.create(pod, dry_run=True)
    names = [c["name"] for c in created["spec"]["containers"]]
    assert names == [SPEC.container_name, "podrunner-collect"]


def _report_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("./report.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"done\n"))
    return buf.getvalue()


def test_collect_copies_files_out(
    runner: PodRunner,
    podrunner_backend_name: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """The collector's tar stream comes back through the API server's exec, extracted safely."""
    root = tmp_path / "out"
    if podrunner_backend_name == "fake":
        cluster: FakeCluster = request.getfixturevalue("podrunner_fake")
        cluster.when(image="busybox:*").exec_handler(lambda _: _report_tar(), argv="tar *")
    else:
        # kwok runs no container: its local exec runs tar on this machine, in this directory.
        root.mkdir()
        (root / "report.txt").write_bytes(b"done\n")
        (root / "bin").mkdir()
        (root / "bin" / "tool").write_bytes(bytes(range(256)) * 4096)
        (root / "bin" / "tool").chmod(0o751)
        (root / "latest").symlink_to("report.txt")
        (root / "escape").symlink_to("/etc/passwd")
    result = runner.run(SPEC, timeout=120, collect=[f"{root}/**"])
    files = result.files
    assert files is not None
    assert files["report.txt"] == b"done\n"
    if podrunner_backend_name != "fake":
        assert files["bin/tool"] == bytes(range(256)) * 4096
        assert files.modes["bin/tool"] == 0o751
        assert files.symlinks == {"latest": "report.txt"}
        assert list(files.skipped) == ["escape"]


def test_a_missing_directory_fails_cleanly(
    runner: PodRunner, podrunner_backend_name: str, request: pytest.FixtureRequest
) -> None:
    """A failing tar in the collector: CollectFailed with the run's result, nothing left."""
    if podrunner_backend_name == "fake":
        cluster: FakeCluster = request.getfixturevalue("podrunner_fake")
        cluster.when(image="busybox:*").exec_handler(
            lambda _: (2, b"", b"tar: /nonexistent-podrunner: Cannot open"), argv="tar *"
        )
    with pytest.raises(CollectFailed, match="tar in the collector exited 2") as err:
        runner.run(SPEC, timeout=120, collect=["/nonexistent-podrunner/**"])
    assert err.value.result.exit_code == 0


POOL_SPEC = PodSpec("busybox:1.36", ["unused"], annotations={"sim.podrunner.dev/duration": "1e9"})


def test_a_pool_run_copies_files_out_of_its_own_container(
    runner: PodRunner,
    podrunner_backend_name: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """A warm pool's pod has no collector: tar runs in its main container, after the command."""
    from podrunner import PodPool

    root = tmp_path / "out"
    root.mkdir()  # the fake's sh and kwok's exec (sh and tar) run on this machine
    if podrunner_backend_name == "fake":
        cluster: FakeCluster = request.getfixturevalue("podrunner_fake")

        def tar(req: Any) -> Any:
            if "/nonexistent-podrunner" in req.argv:
                return (2, b"", b"tar: /nonexistent-podrunner: Cannot open")
            return _report_tar()

        cluster.when(image="busybox:*").exec_handler(tar, argv="tar *")
    with PodPool(runner, POOL_SPEC, size=1) as pool:
        result = pool.run(["sh", "-c", f"echo done > {root}/report.txt"], collect=[f"{root}/**"])
        assert result.exit_code == 0
        assert result.files is not None
        assert result.files["report.txt"] == b"done\n"
        with pytest.raises(CollectFailed, match=r"tar in container \S+ exited") as err:
            pool.run(["true"], collect=["/nonexistent-podrunner/**"])
        assert err.value.result.exit_code == 0
