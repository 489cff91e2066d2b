"""The documentation's real-server examples, run as written on the local kwok control plane.

Blocks marked ``<!-- doc-run: kwok -->`` (see tests/unit/docblocks.py) connect the way a user
does (``~/.kube/config`` or ``PodRunner.connect()``); here ``HOME`` holds the kwok cluster's
kubeconfig, and the namespaces, Secrets and volume claims the examples name exist. kwok plays the
kubelet, so a Claude Code pod "prints" a recorded Claude answer: an admission policy gives every
pod labelled ``app.kubernetes.io/component=claude-runner`` the simulation annotations with it.

The test files the docs show (``# file: test_*.py``) pass unchanged with
``--podrunner-backend=kwok``, as the README promises.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podrunner.run import PodRunner
from podrunner.testing.controlplane.kwok import default_bin_dir

pytestmark = pytest.mark.integration
pytest_plugins = ["pytester"]

_spec = importlib.util.spec_from_file_location(
    "docblocks", Path(__file__).resolve().parents[1] / "unit" / "docblocks.py"
)
assert _spec is not None
assert _spec.loader is not None
docblocks = importlib.util.module_from_spec(_spec)
sys.modules["docblocks"] = docblocks
_spec.loader.exec_module(docblocks)

KWOK_BLOCKS = [b for b in docblocks.all_blocks() if b.where == "kwok"]
TEST_FILES = [b for b in docblocks.all_blocks() if b.where == "test-file"]
# Resolved at import, before pytester replaces HOME for the inner run.
KWOK_BIN_DIR = default_bin_dir()

NAMESPACES = ("agents", "claude-tasks")
CLAUDE_ANSWER = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "duration_ms": 1200,
    "num_turns": 1,
    "result": "README.md explains how to run commands in ephemeral pods.",
    "structured_output": {"verdict": "approve", "issues": []},
    "session_id": "0b6a4c7e-2f1d-4a51-9d0e-6a2f1c3b9e11",
    "total_cost_usd": 0.0123,
    "usage": {"input_tokens": 10, "output_tokens": 20},
}
POLICY = "podrunner-docs-claude-answer"


def _call(api_client: Any, method: str, path: str, body: dict[str, Any] | None = None) -> int:
    """One raw API request (the generated client has no MutatingAdmissionPolicy API yet)."""
    request = api_client.param_serialize(
        method,
        path,
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(*request)
    response.read()
    return int(response.status)


def _post(api_client: Any, path: str, body: dict[str, Any]) -> None:
    status = _call(api_client, "POST", path, body)
    assert status in (200, 201, 409), f"POST {path}: HTTP {status}"


def _answer_policy() -> tuple[dict[str, Any], dict[str, Any]]:
    logs = json.dumps(CLAUDE_ANSWER) + "\n"
    annotations = (
        "{"
        f'"sim.podrunner.dev/logs": {json.dumps(logs)}, '
        '"sim.podrunner.dev/exit-code": "0", '
        '"sim.podrunner.dev/duration": "1"'
        "}"
    )
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": POLICY},
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
                    "name": "claude-runner",
                    "expression": (
                        "has(object.metadata.labels) && "
                        "'app.kubernetes.io/component' in object.metadata.labels && "
                        "object.metadata.labels['app.kubernetes.io/component'] == 'claude-runner'"
                    ),
                }
            ],
            "failurePolicy": "Fail",
            "reinvocationPolicy": "Never",
            "mutations": [
                {
                    "patchType": "ApplyConfiguration",
                    "applyConfiguration": {
                        "expression": (
                            f"Object{{metadata: Object.metadata{{annotations: {annotations}}}}}"
                        )
                    },
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY},
        "spec": {"policyName": POLICY},
    }
    return policy, binding


def _wait_for_policy(core: Any) -> None:
    probe = {
        "metadata": {
            "generateName": "probe-",
            "labels": {"app.kubernetes.io/component": "claude-runner"},
        },
        "spec": {"containers": [{"name": "probe", "image": "probe"}]},
    }
    deadline = time.monotonic() + 60
    while True:
        pod = core.create_namespaced_pod("claude-tasks", probe, dry_run="All")
        if "sim.podrunner.dev/logs" in (pod.metadata.annotations or {}):
            return
        assert time.monotonic() < deadline, "the docs' admission policy never became active"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def docs_cluster(kwok_cluster: Any, core: Any, api_client: Any) -> Iterator[Path]:
    """The objects the examples name, on the kwok cluster; yields its kubeconfig."""
    import kubernetes

    for name in NAMESPACES:
        _post(api_client, "/api/v1/namespaces", {"metadata": {"name": name}})
    for name in NAMESPACES:
        deadline = time.monotonic() + 30
        while True:
            try:
                core.read_namespaced_service_account("default", name)
                break
            except kubernetes.client.ApiException as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    _post(
        api_client,
        "/api/v1/namespaces/claude-tasks/secrets",
        {
            "metadata": {"name": "claude"},
            "stringData": {"api-key": "sk-ant-docs-example", "token": "docs-example"},
        },
    )
    # A claim bound to a static volume: the scheduler places pods only once claims are bound,
    # which the control plane's volume binder does (the pair names each other).
    _post(
        api_client,
        "/api/v1/persistentvolumes",
        {
            "metadata": {"name": "docs-checkout-1234"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "docs",
                "hostPath": {"path": "/nonexistent/docs-checkout"},
                "claimRef": {"namespace": "claude-tasks", "name": "checkout-1234"},
            },
        },
    )
    _post(
        api_client,
        "/api/v1/namespaces/claude-tasks/persistentvolumeclaims",
        {
            "metadata": {"name": "checkout-1234"},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "docs",
                "volumeName": "docs-checkout-1234",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    _wait_bound(core, "claude-tasks", "checkout-1234")
    policy, binding = _answer_policy()
    _post(api_client, "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies", policy)
    _post(
        api_client,
        "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings",
        binding,
    )
    _wait_for_policy(core)
    try:
        yield Path(kwok_cluster.kubeconfig)
    finally:
        for path in (
            f"/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings/{POLICY}",
            f"/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies/{POLICY}",
            "/api/v1/persistentvolumes/docs-checkout-1234",
            *(f"/api/v1/namespaces/{name}" for name in NAMESPACES),
        ):
            _call(api_client, "DELETE", path)


def _wait_bound(core: Any, namespace: str, claim: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        phase = core.read_namespaced_persistent_volume_claim(claim, namespace).status.phase
        if phase == "Bound":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"claim {claim} is {phase}, not Bound, after 30s")
        time.sleep(0.1)


@pytest.mark.parametrize("block", KWOK_BLOCKS, ids=lambda b: b.label)
def test_real_server_block_runs_on_kwok(
    block: Any,
    docs_cluster: Path,
    core: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The block runs as written against the kwok API server and leaves no pod behind."""
    (tmp_path / ".kube").mkdir()
    shutil.copyfile(docs_cluster, tmp_path / ".kube" / "config")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-docs-example")
    namespace: dict[str, Any] = {}
    try:
        exec(compile(block.code, block.label, "exec"), namespace)
    finally:
        # The examples leave their connections to the interpreter's exit, as scripts do.
        for value in namespace.values():
            for owner in (value, getattr(value, "pod_runner", None)):
                if isinstance(owner, PodRunner):
                    owner.close()
                    owner.backend.close()
    result = namespace.get("review") or namespace["result"]
    assert result.ok
    if block.page.name == "claude.md":
        # The recorded answer went through the API server, the log endpoint and the parser.
        assert result.text == CLAUDE_ANSWER["result"]
        assert result.session_id == CLAUDE_ANSWER["session_id"]
        assert CLAUDE_ANSWER["result"] in capsys.readouterr().out or "review" in namespace
    for name in NAMESPACES:
        assert core.list_namespaced_pod(name).items == [], f"{block.label} left pods in {name}"


def test_doc_test_files_pass_on_kwok(pytester: pytest.Pytester) -> None:
    """The test files of the README and the guides pass unchanged with --podrunner-backend=kwok."""
    files = {b.test_module: b.code for b in TEST_FILES}
    assert "test_my_job" in files, "the README's pytest example is a test file"
    tests = sum(
        code.count("\ndef test_") + code.count("\nasync def test_") for code in files.values()
    )
    with pytest.MonkeyPatch.context() as mp:
        # pytester gives the inner run a fresh HOME: point it at the binaries already built.
        mp.setenv("PODRUNNER_CONTROLPLANE_BIN", str(KWOK_BIN_DIR))
        pytester.makepyfile(**files)
        result = pytester.runpytest_subprocess(
            "-p", "no:kmock", "-p", "no:cacheprovider", "--podrunner-backend=kwok", "-rs"
        )
    result.assert_outcomes(passed=tests)
