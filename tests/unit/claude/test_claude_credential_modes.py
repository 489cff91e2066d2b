"""Credential modes beyond an API key: bearer token, proxy, Bedrock, Vertex, managed settings.

Each mode's secrets reach the container only through a Secret; the plain settings (base URL,
region, project) are plain variables. Runs on the local runtime show the CLI finds them.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest

from podrunner.claude import ClaudeCredentials, ClaudeRunner, ClaudeTask, ClaudeWorker
from podrunner.claude.credentials import PROXY_PLACEHOLDER, VERTEX_CREDENTIALS_MOUNT
from podrunner.claude.runner import MANAGED_SETTINGS_PATH
from podrunner.errors import SpecError
from podrunner.manifest import build_manifests
from podrunner.run import PodRunner
from podrunner.spec import SecretRef
from podrunner.testing import FakeCluster
from podrunner.testing.messages_api import FakeMessagesAPI

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

IMAGE = "example.com/claude-code:2"
SA_JSON = json.dumps({"type": "service_account", "private_key": "LEAKCANARY-gcp-key"})


def _manifests(credentials: ClaudeCredentials, **kw: Any) -> Any:
    runner = ClaudeRunner(
        PodRunner(FakeCluster().backend),
        image=IMAGE,
        credentials=credentials,
        launcher_environ={},
        **kw,
    )
    return build_manifests(runner.build_spec(ClaudeTask("hi")))


def _env(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}


def _secret_data(manifests: Any) -> dict[str, str]:
    data = manifests.secret["data"] if manifests.secret else {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def test_auth_token_with_a_gateway() -> None:
    """A bearer token by secretKeyRef, the gateway URL as a plain variable."""
    creds = ClaudeCredentials.auth_token("tok-LEAKCANARY", base_url="https://llm.example.com")
    manifests = _manifests(creds)
    env = _env(manifests.pod)
    assert "secretKeyRef" in env["ANTHROPIC_AUTH_TOKEN"]["valueFrom"]
    assert env["ANTHROPIC_BASE_URL"]["value"] == "https://llm.example.com"
    assert "ANTHROPIC_API_KEY" not in env
    assert list(_secret_data(manifests).values()) == ["tok-LEAKCANARY"]


def test_proxy_gives_the_pod_no_credential() -> None:
    """Behind a credential-injecting proxy: no Secret at all, a public placeholder token."""
    manifests = _manifests(ClaudeCredentials.proxy("http://claude-proxy.infra:8080"))
    assert manifests.secret is None
    env = _env(manifests.pod)
    assert env["ANTHROPIC_BASE_URL"]["value"] == "http://claude-proxy.infra:8080"
    assert env["ANTHROPIC_AUTH_TOKEN"]["value"] == PROXY_PLACEHOLDER
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"):
        assert name not in env
    with_token = _manifests(
        ClaudeCredentials.proxy("http://p:8080", token=SecretRef("pod-tokens", "t1"))
    )
    assert with_token.secret is None
    ref = _env(with_token.pod)["ANTHROPIC_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "pod-tokens", "key": "t1"}


def test_bedrock_keys_go_through_the_secret() -> None:
    """Bedrock: the switch and region plain, every AWS key by secretKeyRef."""
    creds = ClaudeCredentials.bedrock(
        "eu-west-1",
        access_key_id="AKIA-LEAKCANARY",
        secret_access_key=SecretRef("aws", "secret"),
        session_token="session-LEAKCANARY",
    )
    manifests = _manifests(creds)
    env = _env(manifests.pod)
    assert env["CLAUDE_CODE_USE_BEDROCK"]["value"] == "1"
    assert env["AWS_REGION"]["value"] == "eu-west-1"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "aws",
        "key": "secret",
    }
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"):
        assert "secretKeyRef" in env[name]["valueFrom"]
    assert sorted(_secret_data(manifests).values()) == ["AKIA-LEAKCANARY", "session-LEAKCANARY"]
    ambient = _manifests(ClaudeCredentials.bedrock("us-east-1"), service_account="claude-irsa")
    assert ambient.secret is None
    assert ambient.pod["spec"]["serviceAccountName"] == "claude-irsa"


def test_vertex_service_account_is_a_secret_file() -> None:
    """Vertex: region and project plain; the key file mounted from the Secret, named by GAC."""
    creds = ClaudeCredentials.vertex("us-east5", "my-project-123", service_account_json=SA_JSON)
    manifests = _manifests(creds)
    env = _env(manifests.pod)
    assert env["CLAUDE_CODE_USE_VERTEX"]["value"] == "1"
    assert env["CLOUD_ML_REGION"]["value"] == "us-east5"
    assert env["ANTHROPIC_VERTEX_PROJECT_ID"]["value"] == "my-project-123"
    assert env["GOOGLE_APPLICATION_CREDENTIALS"]["value"] == VERTEX_CREDENTIALS_MOUNT
    mounts = manifests.pod["spec"]["containers"][0]["volumeMounts"]
    mount = next(m for m in mounts if m["mountPath"] == VERTEX_CREDENTIALS_MOUNT)
    assert mount["readOnly"] is True
    assert list(_secret_data(manifests).values()) == [SA_JSON]
    ambient = _manifests(ClaudeCredentials.vertex("global", "my-project-123"))
    assert ambient.secret is None
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in _env(ambient.pod)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: ClaudeCredentials.auth_token("t", base_url="llm.example.com"), "base_url"),
        (lambda: ClaudeCredentials.proxy("https://user:LEAKCANARY@proxy"), "base_url"),
        (lambda: ClaudeCredentials("proxy", None), "base_url"),
        (lambda: ClaudeCredentials.bedrock("US East"), "region"),
        (lambda: ClaudeCredentials.bedrock("us-east-1", access_key_id="AKIA"), "secret_access_key"),
        (
            lambda: ClaudeCredentials.bedrock("us-east-1", session_token="LEAKCANARY"),
            "session_token",
        ),
        (
            lambda: ClaudeCredentials.bedrock(
                "us-east-1", access_key_id="a", secret_access_key="b", api_key="LEAKCANARY"
            ),
            "api_key",
        ),
        (
            lambda: ClaudeCredentials.bedrock("us-east-1", api_key="two\nLEAKCANARY"),
            "AWS_BEARER_TOKEN_BEDROCK",
        ),
        (lambda: ClaudeCredentials.vertex("us-east5", "P!"), "project"),
        (
            lambda: ClaudeCredentials.vertex(
                "us-east5", "my-project-1", service_account_json="LEAKCANARY"
            ),
            "service_account_json",
        ),
        (lambda: ClaudeCredentials("vertex", None, region="us-east5"), "project"),
        (lambda: ClaudeCredentials("api_key", "k", region="us-east-1"), "region"),
        (
            lambda: ClaudeCredentials("api_key", "k", secrets={"AWS_SECRET_ACCESS_KEY": "x"}),
            "secrets",
        ),
        (lambda: ClaudeCredentials.oauth_token("t").__class__("oauth_token", None), "oauth_token"),
    ],
)
def test_bad_modes_are_spec_errors_without_the_value(make: Any, field: str) -> None:
    """Each mode checks its parts on construction; no secret appears in the message."""
    with pytest.raises(SpecError) as info:
        make()
    assert info.value.field == field
    assert "LEAKCANARY" not in str(info.value)


def test_env_may_not_set_what_credentials_set() -> None:
    """ANTHROPIC_BASE_URL from both credentials and env= is refused: one source."""
    with pytest.raises(SpecError) as info:
        _manifests(ClaudeCredentials.proxy("http://p:8080"), env={"ANTHROPIC_BASE_URL": "x"})
    assert info.value.field == "env[ANTHROPIC_BASE_URL]"


def test_worker_ids_tell_modes_apart_and_stay_stable() -> None:
    """Each mode has an identity; the original kinds keep the digests they always had."""
    from podrunner.claude.worker import default_worker_id

    a = default_worker_id(ClaudeCredentials.bedrock("us-east-1"))
    assert a == default_worker_id(ClaudeCredentials.bedrock("us-east-1"))
    assert a != default_worker_id(ClaudeCredentials.bedrock("eu-west-1"))
    assert default_worker_id(ClaudeCredentials.api_key("k")) != default_worker_id(
        ClaudeCredentials.api_key("k", base_url="https://gw")
    )
    assert ClaudeCredentials.api_key(SecretRef("s", "k")).identity() == ("ref", "api_key", "s", "k")
    assert ClaudeCredentials.oauth_token("t").identity() == ("value", "oauth_token", "t")


def _local(shared: Path, standin: str, credentials: ClaudeCredentials, **kw: Any) -> ClaudeRunner:
    env = {
        "CLAUDE_STANDIN_REQUIRE_AUTH": "1",
        "CLAUDE_STANDIN_RECORD": str(shared / "record.jsonl"),
    }
    env.update(kw.pop("env", {}))
    return ClaudeRunner(
        PodRunner(FakeCluster(runtime="local").backend),
        image=IMAGE,
        credentials=credentials,
        claude_path=standin,
        launcher_environ={},
        env=env,
        timeout=60,
        **kw,
    )


@pytest.mark.parametrize(
    ("credentials", "source"),
    [
        (lambda url: ClaudeCredentials.auth_token("tok", base_url=url), "ANTHROPIC_AUTH_TOKEN"),
        (ClaudeCredentials.proxy, "ANTHROPIC_AUTH_TOKEN"),
        (
            lambda url: ClaudeCredentials.bedrock(
                "us-east-1", access_key_id="a", secret_access_key="b"
            ),
            "bedrock (access key)",
        ),
        (
            lambda url: ClaudeCredentials.bedrock("us-east-1", api_key="bedrock-key"),
            "bedrock (api key)",
        ),
        (
            lambda url: ClaudeCredentials.vertex(
                "us-east5", "my-project-123", service_account_json=SA_JSON
            ),
            "vertex (service account)",
        ),
    ],
    ids=["auth_token", "proxy", "bedrock_keys", "bedrock_api_key", "vertex_file"],
)
def test_the_cli_in_the_pod_finds_its_credentials(
    credentials: Callable[[str], ClaudeCredentials], source: str, shared: Path, standin: str
) -> None:
    """On the local runtime the stand-in authenticates with each mode, as the CLI would.

    A gateway URL is a local Messages API: the stand-in (like the CLI) talks to it, with the
    bearer token as ``Authorization``.
    """
    with FakeMessagesAPI() as api:
        result = _local(shared, standin, credentials(api.url)).run(ClaudeTask("hi"))
        assert result.ok, result.error
        bearer = [r for r in api.message_requests if "authorization" in r.headers]
        assert len(bearer) == (1 if source == "ANTHROPIC_AUTH_TOKEN" else 0)
    seen = json.loads((shared / "record.jsonl").read_text().splitlines()[-1])
    assert seen["credentials"] == [source]


def test_managed_settings_are_a_read_only_file_the_task_cannot_override(
    shared: Path, standin: str
) -> None:
    """Managed settings deny Bash: a task allowing Bash still has no Bash tool."""
    settings = {"permissions": {"deny": ["Bash"]}}
    runner = _local(
        shared,
        standin,
        ClaudeCredentials.api_key("sk-ant-x"),
        managed_settings=settings,
        # The local runtime maps a mount path given in env: where the CLI finds the file.
        env={"CLAUDE_STANDIN_MANAGED_SETTINGS": MANAGED_SETTINGS_PATH},
    )
    spec = runner.build_spec(ClaudeTask("hi"))
    assert dict(spec.files) == {MANAGED_SETTINGS_PATH: json.dumps(settings, separators=(",", ":"))}
    pod = build_manifests(spec).pod
    mount = next(
        m
        for m in pod["spec"]["containers"][0]["volumeMounts"]
        if m["mountPath"] == "/etc/claude-code"
    )
    assert mount["readOnly"] is True
    task = ClaudeTask("#tool-use", allowed_tools=["Bash"], output_format="stream-json")
    result = runner.run(task)
    # As CLI 2.1.332 does: a tool denied by managed settings is not offered at all.
    init = next(e for e in result.events if e.get("subtype") == "init")
    assert "Bash" not in init["tools"]
    assert "Read" in init["tools"]
    assert not [
        e
        for e in result.events
        if e.get("type") == "assistant"
        and any(block.get("type") == "tool_use" for block in e["message"]["content"])
    ]


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (
            {"env": {"ANTHROPIC_API_KEY": "sk-ant-LEAKCANARY"}},
            "managed_settings.env[ANTHROPIC_API_KEY]",
        ),
        ({"env": {"GITHUB_TOKEN": "LEAKCANARY"}}, "managed_settings.env[GITHUB_TOKEN]"),
        ("[1]", "managed_settings"),
        ({"a": float("nan")}, 'managed_settings["a"]'),
    ],
)
def test_managed_settings_refuse_credentials_and_bad_json(settings: Any, field: str) -> None:
    """A ConfigMap is not secret: credential-looking env entries are refused, unshown."""
    with pytest.raises(SpecError) as info:
        _manifests(ClaudeCredentials.api_key("k"), managed_settings=settings)
    assert info.value.field == field
    assert "LEAKCANARY" not in str(info.value)


def test_a_worker_pod_carries_managed_settings_too() -> None:
    """The worker's long-lived pod gets the same read-only file; stop() leaves nothing."""
    cluster = FakeCluster()
    answer = '{"type":"result","subtype":"success","is_error":false,"result":"ok"}'
    cluster.when(image=IMAGE).hang().exec_handler(lambda request: answer)
    with ClaudeWorker(
        PodRunner(cluster.backend),
        image=IMAGE,
        credentials=ClaudeCredentials.api_key("sk-ant-w"),
        managed_settings={"permissions": {"deny": ["WebFetch"]}},
        launcher_environ={},
    ) as worker:
        assert worker.run("hi").ok
        (config_map,) = _run_config_maps(cluster)
        assert json.loads(config_map["data"]["managed-settings.json"]) == {
            "permissions": {"deny": ["WebFetch"]}
        }
    assert cluster.pods() == []
    assert _run_config_maps(cluster) == []


def _run_config_maps(cluster: FakeCluster) -> list[dict[str, Any]]:
    """The ConfigMaps podrunner made (each namespace also has kube-root-ca.crt)."""
    return [c for c in cluster.config_maps() if c["metadata"]["name"] != "kube-root-ca.crt"]
