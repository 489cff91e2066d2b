"""PodSpec.files: text that becomes a per-run ConfigMap owned by the pod, mounted read-only."""

from __future__ import annotations

from typing import Any

import pytest

from podrunner import PodRunner, PodSpec, SpecError
from podrunner.manifest import MANAGED_SELECTOR, build_manifests
from podrunner.testing import FakeCluster

SPEC = PodSpec(image="busybox:1.36", command=["sh", "-c", "cat /in/data.txt"])


def test_files_become_a_config_map_mounted_by_directory() -> None:
    spec = SPEC.with_files({"/in/data.txt": "héllo\n", "/in/more.txt": "x", "/etc/app/a.yaml": "a"})
    manifests = build_manifests(spec, run_id="r1")
    cm = manifests.config_map
    assert cm is not None
    assert cm["metadata"]["name"] == f"{manifests.pod_name}-files"
    assert cm["metadata"]["labels"]["podrunner.dev/run-id"] == "r1"
    assert cm["data"] == {"data.txt": "héllo\n", "more.txt": "x", "a.yaml": "a"}
    mounts = manifests.pod["spec"]["containers"][0]["volumeMounts"]
    assert {(m["mountPath"], m["readOnly"]) for m in mounts} == {("/in", True), ("/etc/app", True)}
    assert manifests.objects[0] is cm  # created before the pod that mounts it


def test_a_run_creates_owns_and_deletes_its_files() -> None:
    cluster = FakeCluster()
    seen: dict[str, Any] = {}

    def on_state(_: object) -> None:
        for cm in cluster.backend.list(
            "ConfigMap", "default", label_selector=MANAGED_SELECTOR
        ).items:
            seen["cm"] = cm

    cluster.when(image="busybox:*").succeed(logs="héllo\n", after=1.0)
    result = PodRunner(cluster.backend).run(
        SPEC.with_files({"/in/data.txt": "héllo\n"}), on_state=on_state
    )
    assert result.ok
    assert seen["cm"]["data"] == {"data.txt": "héllo\n"}
    assert seen["cm"]["metadata"]["ownerReferences"][0]["name"] == result.pod_name
    assert cluster.backend.list("ConfigMap", "default", label_selector=MANAGED_SELECTOR).items == []


@pytest.mark.parametrize(
    ("files", "field", "rule"),
    [
        ({"in/data.txt": "x"}, "files", "absolute path"),
        ({"/in/": "x"}, "files", "not a directory"),
        ({"/data.txt": "x"}, "files", "other than /"),
        ({"/in/a b": "x"}, "files", "config"),
        ({"/in/data.txt": 3}, "files[/in/data.txt]", "must be a str"),
        ({"/in/a": "x" * 600_000, "/in/b": "y" * 600_000}, "files", "1 MiB"),
    ],
)
def test_bad_files_are_refused_before_any_call(
    files: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(SpecError) as info:
        SPEC.with_files(files)
    assert info.value.field == field
    assert rule in str(info.value)
    assert "x" * 100 not in str(info.value)  # the content is never echoed


def test_files_and_volumes_may_not_share_a_directory() -> None:
    from podrunner import Volume

    with pytest.raises(SpecError, match="mount path already used"):
        PodSpec(
            image="busybox:1.36",
            command=["true"],
            volumes=[Volume.empty_dir("/in")],
            files={"/in/data.txt": "x"},
        )
