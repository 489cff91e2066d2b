"""Tests for podrunner.manifest: the pod and per-run Secret manifests."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from podrunner.errors import SpecError
from podrunner.manifest import (
    COMPONENT_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_SELECTOR,
    RUN_ID_LABEL,
    build_manifests,
    build_pod_manifest,
    owner_reference,
)
from podrunner.spec import (
    EnvVar,
    ImagePullPolicy,
    PodSpec,
    Resources,
    SecretRef,
    SecurityProfile,
    Toleration,
    Volume,
)


def seed_spec(**kw: Any) -> PodSpec:
    """The seed tests' PodConfig: test-pod, img:v1, sh, default namespace, claude-code."""
    kw.setdefault("name", "test-pod")
    kw.setdefault("namespace", "default")
    kw.setdefault("container_name", "claude-code")
    kw.setdefault("component", "claude-runner")
    return PodSpec("img:v1", ["sh"], **kw)


def pod_of(spec: PodSpec, run_id: str = "run1") -> dict[str, Any]:
    return build_pod_manifest(spec, run_id=run_id)


def container(pod: dict[str, Any]) -> dict[str, Any]:
    containers = pod["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def walk(obj: Any) -> list[Any]:
    """Every value of a JSON tree."""
    if isinstance(obj, dict):
        return [obj, *(x for value in obj.values() for x in walk(value))]
    if isinstance(obj, list):
        return [obj, *(x for value in obj for x in walk(value))]
    return [obj]


# -- seed parity ---------------------------------------------------------------------------


def test_seed_without_image_pull_secrets() -> None:
    """Seed: no pull secrets means no imagePullSecrets key at all."""
    assert "imagePullSecrets" not in pod_of(seed_spec())["spec"]


def test_seed_with_image_pull_secrets() -> None:
    """Seed: pull secrets are listed in order."""
    spec = seed_spec(image_pull_secrets=["gitlab-registry", "dockerhub"])
    assert pod_of(spec)["spec"]["imagePullSecrets"] == [
        {"name": "gitlab-registry"},
        {"name": "dockerhub"},
    ]


def test_seed_without_extra_labels() -> None:
    """Seed: only the managed labels (here three, with the run id)."""
    labels = pod_of(seed_spec())["metadata"]["labels"]
    assert labels == {
        MANAGED_BY_LABEL: "podrunner",
        COMPONENT_LABEL: "claude-runner",
        RUN_ID_LABEL: "run1",
    }


def test_seed_with_extra_labels() -> None:
    """Seed: an extra label joins the managed ones."""
    labels = pod_of(seed_spec(labels={"network-profile": "restricted"}))["metadata"]["labels"]
    assert len(labels) == 4
    assert labels["network-profile"] == "restricted"
    assert labels[MANAGED_BY_LABEL] == "podrunner"
    assert labels[COMPONENT_LABEL] == "claude-runner"


def test_seed_extra_labels_cannot_override_managed() -> None:
    """Seed: a managed label cannot be overridden (the seed ignored it; podrunner refuses)."""
    with pytest.raises(SpecError) as info:
        seed_spec(labels={MANAGED_BY_LABEL: "attacker"})
    assert info.value.field == "labels"
    assert info.value.value == MANAGED_BY_LABEL


def test_seed_merges_labels() -> None:
    """Seed: several extra labels merge with the managed ones."""
    extra = {
        "team": "observability",
        "ironflow.io/network-profile": "grafana-only",
        "env": "staging",
    }
    labels = pod_of(seed_spec(labels=extra))["metadata"]["labels"]
    assert len(labels) == 6
    for key, value in extra.items():
        assert labels[key] == value
    assert labels[MANAGED_BY_LABEL] == "podrunner"
    assert labels[RUN_ID_LABEL] == "run1"


def test_seed_without_volumes() -> None:
    """Seed: no volumes means neither volumes nor volumeMounts."""
    pod = pod_of(seed_spec())
    assert "volumes" not in pod["spec"]
    assert "volumeMounts" not in container(pod)


def test_seed_with_volumes() -> None:
    """Seed: host paths become vol-0, vol-1 with type Directory, mounted in order."""
    spec = seed_spec(
        volumes=[
            Volume.host_path("/tmp/worktrees", "/data/worktrees"),
            Volume.host_path("/tmp/repos", "/data/repos"),
        ],
        security=SecurityProfile.NONE,
    )
    pod = pod_of(spec)
    assert pod["spec"]["volumes"] == [
        {"name": "vol-0", "hostPath": {"path": "/tmp/worktrees", "type": "Directory"}},
        {"name": "vol-1", "hostPath": {"path": "/tmp/repos", "type": "Directory"}},
    ]
    assert container(pod)["volumeMounts"] == [
        {"name": "vol-0", "mountPath": "/data/worktrees"},
        {"name": "vol-1", "mountPath": "/data/repos"},
    ]


def test_seed_pod_config_fields() -> None:
    """Seed: every PodConfig field lands where the seed put it."""
    spec = seed_spec(
        resources=Resources(cpu_limit="500m", memory_limit="512Mi"),
        service_account="runner",
        restart_policy="Never",
        image_pull_policy=ImagePullPolicy.ALWAYS,
        env={"FOO": "bar"},
    )
    pod = pod_of(spec)
    assert pod["apiVersion"] == "v1"
    assert pod["kind"] == "Pod"
    assert pod["metadata"]["name"] == "test-pod"
    assert pod["metadata"]["namespace"] == "default"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["serviceAccountName"] == "runner"
    c = container(pod)
    assert c["name"] == "claude-code"
    assert c["image"] == "img:v1"
    assert c["imagePullPolicy"] == "Always"
    assert c["command"] == ["sh"]
    assert c["env"] == [{"name": "FOO", "value": "bar"}]
    assert c["resources"] == {"limits": {"cpu": "500m", "memory": "512Mi"}}


def test_seed_no_resources_means_no_resources_key() -> None:
    """Seed: default resources add no resources object."""
    assert "resources" not in container(pod_of(seed_spec()))


# -- environment -----------------------------------------------------------------------------


def test_blank_env_first_and_explicit_wins() -> None:
    """Blanked names come first; an env or secret_env entry of the same name replaces them."""
    spec = seed_spec(
        blank_env=["CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "TOKEN"],
        env={"CLAUDECODE": "1", "X": "y"},
        secret_env={"TOKEN": "t0p"},
    )
    env = container(pod_of(spec))["env"]
    names = [e["name"] for e in env]
    assert names == ["CLAUDE_CODE_ENTRYPOINT", "CLAUDECODE", "X", "TOKEN"]
    assert len(set(names)) == len(names)
    assert env[0] == {"name": "CLAUDE_CODE_ENTRYPOINT", "value": ""}
    assert env[1] == {"name": "CLAUDECODE", "value": "1"}


def test_env_secret_refs() -> None:
    """EnvVar and secret_env SecretRefs point at the user's Secret, not the per-run one."""
    spec = seed_spec(
        env=[EnvVar("A", secret_ref=SecretRef("mine", "a"))],
        secret_env={"B": SecretRef("mine", "b")},
    )
    m = build_manifests(spec, run_id="r")
    env = container(m.pod)["env"]
    assert env == [
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "mine", "key": "a"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "mine", "key": "b"}}},
    ]
    assert m.secret is None


# -- secrets ---------------------------------------------------------------------------------


def test_per_run_secret() -> None:
    """secret_env and secret_files go into <pod>-secrets, referenced and mounted read-only."""
    creds = '{"claudeAiOauth":{"accessToken":"tok-123"}}'
    spec = seed_spec(
        secret_env={"ANTHROPIC_API_KEY": "sk-ant-xyz", "weird name": "w"},
        secret_files={"/home/claude/.claude/.credentials.json": creds},
    )
    m = build_manifests(spec, run_id="r1")
    assert m.secret is not None
    assert m.secret["metadata"]["name"] == "test-pod-secrets"
    assert m.secret["metadata"]["labels"] == m.pod["metadata"]["labels"]
    assert m.secret["type"] == "Opaque"
    assert "ownerReferences" not in m.secret["metadata"]
    data = {k: base64.b64decode(x).decode() for k, x in m.secret["data"].items()}
    assert data == {"env.ANTHROPIC_API_KEY": "sk-ant-xyz", "env-1": "w", "file-0": creds}
    c = container(m.pod)
    assert c["env"][0] == {
        "name": "ANTHROPIC_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "test-pod-secrets", "key": "env.ANTHROPIC_API_KEY"}},
    }
    assert c["volumeMounts"] == [
        {
            "name": "podrunner-secrets",
            "mountPath": "/home/claude/.claude/.credentials.json",
            "readOnly": True,
            "subPath": "file-0",
        }
    ]
    assert m.pod["spec"]["volumes"] == [
        {
            "name": "podrunner-secrets",
            "secret": {
                "secretName": "test-pod-secrets",
                "items": [{"key": "file-0", "path": "file-0", "mode": 0o400}],
            },
        }
    ]
    # Root-owned 0400 files must be readable by the non-root user: fsGroup hands them over.
    assert m.pod["spec"]["securityContext"]["fsGroup"] == 65532
    assert m.objects == [m.secret, m.pod]


def test_secret_file_from_existing_secret() -> None:
    """A SecretRef file projects only that key of the user's Secret."""
    spec = seed_spec(secret_files={"/etc/creds.json": SecretRef("claude-creds", "json")})
    m = build_manifests(spec, run_id="r")
    assert m.secret is None
    assert m.pod["spec"]["volumes"] == [
        {
            "name": "podrunner-secrets-ref-0",
            "secret": {
                "secretName": "claude-creds",
                "items": [{"key": "json", "path": "value", "mode": 0o400}],
            },
        }
    ]
    assert container(m.pod)["volumeMounts"][0]["subPath"] == "value"


def test_no_secret_value_in_pod_manifest() -> None:
    """No secret value, raw or base64, appears anywhere in the pod JSON."""
    secrets = ["sk-ant-SECRET-1", "p@ss'w\"ord%s\n", "ünïcødé-secret"]
    spec = seed_spec(
        secret_env={"A": secrets[0], "B": secrets[1]},
        secret_files={"/etc/c": secrets[2]},
    )
    m = build_manifests(spec, run_id="r")
    text = json.dumps(m.pod, ensure_ascii=False)
    for secret in secrets:
        assert secret not in text
        assert base64.b64encode(secret.encode()).decode() not in text


# -- security --------------------------------------------------------------------------------


def test_restricted_security_by_default() -> None:
    """The restricted Pod Security Standard is met by default."""
    pod = pod_of(seed_spec())
    assert pod["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container(pod)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_restricted_with_explicit_ids_and_read_only_root() -> None:
    """Explicit ids replace the default uid; a read-only root is set when asked."""
    pod = pod_of(
        seed_spec(
            run_as_user=1000,
            run_as_group=2000,
            fs_group=3000,
            read_only_root_filesystem=True,
            automount_service_account_token=True,
        )
    )
    ctx = pod["spec"]["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) == (1000, 2000, 3000)
    assert container(pod)["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["automountServiceAccountToken"] is True


def test_baseline_and_none_profiles() -> None:
    """Baseline only forbids privilege escalation; NONE adds no security context."""
    baseline = pod_of(seed_spec(security=SecurityProfile.BASELINE))
    assert "securityContext" not in baseline["spec"]
    assert container(baseline)["securityContext"] == {"allowPrivilegeEscalation": False}
    none = pod_of(seed_spec(security=SecurityProfile.NONE))
    assert "securityContext" not in none["spec"]
    assert "securityContext" not in container(none)
    for obj in walk(none):
        if isinstance(obj, dict):
            assert "privileged" not in obj
            assert "hostNetwork" not in obj


# -- shape -----------------------------------------------------------------------------------


def test_everything_optional_lands_in_camel_case() -> None:
    """Optional fields appear with their Kubernetes names."""
    spec = seed_spec(
        annotations={"note": "x"},
        working_dir="/work",
        node_selector={"pool": "gpu"},
        tolerations=[Toleration(operator="Exists")],
        active_deadline_seconds=600,
        stdin=True,
        volumes=[Volume.empty_dir("/scratch"), Volume.pvc("c", "/d", read_only=True, sub_path="x")],
    )
    pod = pod_of(spec)
    assert pod["metadata"]["annotations"] == {"note": "x"}
    assert pod["spec"]["nodeSelector"] == {"pool": "gpu"}
    assert pod["spec"]["tolerations"] == [{"operator": "Exists"}]
    assert pod["spec"]["activeDeadlineSeconds"] == 600
    c = container(pod)
    assert c["workingDir"] == "/work"
    assert c["stdin"] is True
    assert pod["spec"]["volumes"][0] == {"name": "vol-0", "emptyDir": {}}
    assert c["volumeMounts"][1] == {
        "name": "vol-1",
        "mountPath": "/d",
        "readOnly": True,
        "subPath": "x",
    }


def test_no_nulls_or_empty_collections() -> None:
    """The JSON holds no null and no empty list or dict (emptyDir's {} aside)."""
    for spec in (seed_spec(), seed_spec(volumes=[Volume.pvc("c", "/d")], labels={"a": "b"})):
        for obj in walk(pod_of(spec)):
            assert obj is not None
            if isinstance(obj, (list, dict)):
                assert obj, pod_of(spec)


def test_deterministic() -> None:
    """The same spec, name and run id give byte-identical JSON."""
    spec = seed_spec(labels={"b": "2", "a": "1"}, env={"A": "1"}, secret_env={"S": "x"})
    one = build_manifests(spec, run_id="r")
    two = build_manifests(spec, run_id="r")
    assert json.dumps(one.pod) == json.dumps(two.pod)
    assert json.dumps(one.secret) == json.dumps(two.secret)
    assert list(one.pod["metadata"]["labels"]) == sorted(one.pod["metadata"]["labels"])


def test_repeated_builds_match_a_fresh_build_and_share_nothing() -> None:
    """Later builds of one spec object equal a first build byte for byte and are independent."""
    from podrunner.manifest.build import _build_full

    specs = [
        seed_spec(),
        seed_spec(labels={"zz": "1", "a": "2", "podrunner.dev/x": "y"}, annotations={"n": "x"}),
        PodSpec(
            "img",
            ["sh", "-c", "x"],
            env={"A": "1"},
            blank_env=["B"],
            volumes=[Volume.empty_dir("/s"), Volume.pvc("c", "/d", read_only=True)],
            tolerations=[Toleration(operator="Exists")],
            node_selector={"pool": "gpu"},
            image_pull_secrets=["reg"],
            active_deadline_seconds=60,
            resources=Resources(cpu_limit="1"),
        ),
    ]
    for spec in specs:
        first = build_manifests(spec, run_id="r1")
        first.pod["spec"]["containers"][0]["command"].append("mutated")
        for run_id in ("r2", "r3"):
            again = build_manifests(spec, run_id=run_id)
            fresh = _build_full(spec, again.pod_name, run_id)
            assert json.dumps(again.pod) == json.dumps(fresh.pod)
            again.pod["spec"]["containers"][0]["command"].append("mutated")
            again.pod["metadata"]["labels"]["x"] = "y"


def test_generated_names_and_run_ids() -> None:
    """Without a name, each build makes a fresh valid name and run id; prefix is honoured."""
    spec = PodSpec("img", ["sh"], name_prefix="claude-code")
    a, b = build_manifests(spec), build_manifests(spec)
    assert a.pod_name != b.pod_name
    assert a.run_id != b.run_id
    assert a.pod_name.startswith("claude-code-")
    assert a.pod["metadata"]["labels"][RUN_ID_LABEL] == a.run_id
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", a.pod_name)
    assert build_manifests(PodSpec("img", ["sh"])).pod_name.startswith("podrunner-")
    assert build_pod_manifest(spec, name="explicit")["metadata"]["name"] == "explicit"


def test_bad_run_id_or_name_override() -> None:
    """An invalid run id or name override is a SpecError, not a bad manifest."""
    with pytest.raises(SpecError) as info:
        build_manifests(seed_spec(), run_id="not valid!")
    assert info.value.field == "run_id"
    with pytest.raises(SpecError):
        build_manifests(seed_spec(), run_id="")
    with pytest.raises(SpecError):
        build_pod_manifest(seed_spec(), name="Bad_Name")


def test_owner_reference_and_selector() -> None:
    """owner_reference points at a created pod; it needs the server-assigned uid."""
    pod = {"metadata": {"name": "p", "uid": "123"}}
    assert owner_reference(pod) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "p",
        "uid": "123",
        "blockOwnerDeletion": False,
        "controller": False,
    }
    with pytest.raises(ValueError, match="uid"):
        owner_reference({"metadata": {"name": "p"}})
    assert MANAGED_SELECTOR == "app.kubernetes.io/managed-by=podrunner"
