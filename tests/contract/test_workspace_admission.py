"""Workspaces: the API server's dry run admits what podrunner builds, as built.

A workspace adds an ``emptyDir`` (or PVC) volume, its mount in every container and one init
container per source, with the git token as a ``secretKeyRef``. The size limit is checked by
podrunner as a quantity, like the server, and deliberately stricter for ``0`` (an emptyDir
capped at zero bytes would be evicted as soon as the checkout writes a byte) and for spaces
around the quantity (``" 1Gi"``, which the server's decoder trims), as for ``Volume.size_limit``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest

from podrunner import (
    InitContainer,
    PodSpec,
    SecretRef,
    Sidecar,
    SpecError,
    Workspace,
    build_manifests,
)
from podrunner.errors import BadRequest, Invalid

if TYPE_CHECKING:
    from conftest import Kit

pytestmark = pytest.mark.integration

REPO = "https://github.com/acme/app.git"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _spec(kit: Kit, workspace: Workspace) -> PodSpec:
    return PodSpec(
        "python:3.12",
        ["pytest"],
        name="p",
        namespace=kit.namespace,
        workspace=workspace,
        secret_env={"API_KEY": "k"},
        init_containers=[InitContainer("deps", image="python:3.12", command=["pip", "install"])],
        sidecars=[Sidecar("proxy", image="busybox:1.36", command=["sleep", "3600"])],
    )


FULL = (
    Workspace.git(REPO, "main", credentials=SecretRef("git-token", "token"), size_limit="2Gi")
    .with_git("git@github.com:acme/lib.git", COMMIT, path="lib", depth=None)
    .with_download("https://example.com/d.csv", "data/d.csv", sha256="e" * 64)
)


def _env(container: dict[str, Any]) -> list[dict[str, Any]]:
    # The server leaves out an empty value (omitempty): "" and no value are the same.
    return [{k: x for k, x in e.items() if x != ""} for e in container.get("env", [])]


def test_workspace_pod_is_admitted_as_built(kit: Kit) -> None:
    """Every source kind, a size limit, sidecar and init containers: admitted unchanged."""
    pod = build_manifests(_spec(kit, FULL)).pod
    created = kit.backend.create(pod, dry_run=True)
    inits = created["spec"]["initContainers"]
    names = ["proxy", "workspace-0", "workspace-1", "workspace-2", "deps"]
    assert [c["name"] for c in inits] == names
    for built, admitted in zip(pod["spec"]["initContainers"], inits, strict=True):
        assert admitted["command"] == built["command"]
        assert _env(admitted) == _env(built)
    volume = next(v for v in created["spec"]["volumes"] if v["name"] == "podrunner-workspace")
    assert volume["emptyDir"] == {"sizeLimit": "2Gi"}
    assert created["spec"]["containers"][0]["workingDir"] == "/workspace"


def test_workspace_on_a_claim_is_admitted(kit: Kit) -> None:
    """A PVC workspace (the claim need not exist for a dry run), with its fsGroup."""
    pod = build_manifests(_spec(kit, Workspace.git(REPO, claim="ws-cache"))).pod
    created = kit.backend.create(pod, dry_run=True)
    volume = next(v for v in created["spec"]["volumes"] if v["name"] == "podrunner-workspace")
    assert volume["persistentVolumeClaim"] == {"claimName": "ws-cache"}
    assert created["spec"]["securityContext"]["fsGroup"] == 65532


@pytest.mark.parametrize("limit", ["1Gi", "500M", "1.5Gi", "1e3", "lots", "-1Gi", "1GiB"])
def test_size_limit_verdicts_agree(kit: Kit, limit: str) -> None:
    """Podrunner refuses a size limit exactly when the API server does."""
    try:
        ours: dict[str, Any] | None = build_manifests(
            _spec(kit, Workspace.git(REPO, size_limit=limit))
        ).pod
    except SpecError:
        ours = None
    manifest = ours
    if manifest is None:
        manifest = copy.deepcopy(build_manifests(_spec(kit, Workspace.git(REPO))).pod)
        volume = next(v for v in manifest["spec"]["volumes"] if v["name"] == "podrunner-workspace")
        volume["emptyDir"] = {"sizeLimit": limit}
    try:
        kit.backend.create(manifest, dry_run=True)
        theirs = True
    except (Invalid, BadRequest):
        theirs = False
    assert (ours is not None) == theirs
