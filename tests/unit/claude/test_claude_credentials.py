"""ClaudeCredentials: where each kind goes, redaction, inline mode, and leak scans."""

from __future__ import annotations

import base64
import json
import logging
from typing import TYPE_CHECKING

import attrs
import pytest

from podrunner.claude import (
    ClaudeCredentials,
    ClaudeRunner,
    ClaudeTask,
    InlineCredentialsWarning,
    Telemetry,
)
from podrunner.claude.credentials import CREDENTIALS_MOUNT
from podrunner.errors import SpecError
from podrunner.manifest import build_manifests
from podrunner.run import PodRunner
from podrunner.spec import SecretRef
from podrunner.testing import FakeCluster
from podrunner.testing.messages_api import FakeMessagesAPI

if TYPE_CHECKING:
    from pathlib import Path

API_KEY = "sk-ant-api03-LEAKCANARY-key-0123456789"
TOKEN = "sk-ant-oat01-LEAKCANARY-token-0123456789"
OAUTH = json.dumps(
    {"claudeAiOauth": {"accessToken": "LEAKCANARY-access", "refreshToken": "LEAKCANARY-rt"}}
)
OTLP_TOKEN = "otlp-LEAKCANARY-collector-0123"
CANARIES = ("LEAKCANARY",)


def _runner(credentials: ClaudeCredentials, **kw: object) -> ClaudeRunner:
    cluster = FakeCluster()
    return ClaudeRunner(
        PodRunner(cluster.backend),
        image="example.com/claude-code:2",
        credentials=credentials,
        launcher_environ={},
        **kw,  # type: ignore[arg-type]
    )


def test_api_key_goes_to_secret_env() -> None:
    """An API key becomes ANTHROPIC_API_KEY through a secretKeyRef to the per-run Secret."""
    spec = _runner(ClaudeCredentials.api_key(API_KEY)).build_spec(ClaudeTask("hi"))
    manifests = build_manifests(spec)
    env = {e["name"]: e for e in manifests.pod["spec"]["containers"][0]["env"]}
    ref = env["ANTHROPIC_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == manifests.secret["metadata"]["name"]  # type: ignore[index]
    assert base64.b64decode(manifests.secret["data"][ref["key"]]).decode() == API_KEY  # type: ignore[index]


def test_oauth_token_goes_to_secret_env() -> None:
    """An OAuth token becomes CLAUDE_CODE_OAUTH_TOKEN via secretKeyRef, never blanked."""
    runner = ClaudeRunner(
        PodRunner(FakeCluster().backend),
        image="example.com/claude-code:2",
        credentials=ClaudeCredentials.oauth_token(TOKEN),
        launcher_environ={"CLAUDE_CODE_OAUTH_TOKEN": "launcher-token", "CLAUDECODE": "1"},
    )
    pod = build_manifests(runner.build_spec(ClaudeTask("hi"))).pod
    env = pod["spec"]["containers"][0]["env"]
    names = [e["name"] for e in env]
    assert names.count("CLAUDE_CODE_OAUTH_TOKEN") == 1
    token = next(e for e in env if e["name"] == "CLAUDE_CODE_OAUTH_TOKEN")
    assert "secretKeyRef" in token["valueFrom"]
    assert {"name": "CLAUDECODE", "value": ""} in env
    assert "launcher-token" not in json.dumps(pod)


def test_oauth_json_is_mounted_and_copied() -> None:
    """OAuth JSON is a secret file the launcher copies into $HOME/.claude."""
    spec = _runner(ClaudeCredentials.oauth_json(OAUTH)).build_spec(ClaudeTask("hi"))
    assert dict(spec.secret_files) == {CREDENTIALS_MOUNT: OAUTH}
    assert CREDENTIALS_MOUNT in spec.command  # the launcher's CREDS argument
    pod = build_manifests(spec).pod
    mounts = pod["spec"]["containers"][0]["volumeMounts"]
    mount = next(m for m in mounts if m["mountPath"] == CREDENTIALS_MOUNT)
    assert mount["readOnly"] is True


def test_secret_ref_is_referenced_not_copied() -> None:
    """A SecretRef is used as is: no per-run Secret is created for it."""
    ref = SecretRef("team-claude", "api-key")
    manifests = build_manifests(
        _runner(ClaudeCredentials.api_key(ref)).build_spec(ClaudeTask("hi"))
    )
    assert manifests.secret is None
    env = {e["name"]: e for e in manifests.pod["spec"]["containers"][0]["env"]}
    assert env["ANTHROPIC_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "team-claude",
        "key": "api-key",
    }
    oauth = build_manifests(
        _runner(ClaudeCredentials.oauth_json(SecretRef("creds", "json"))).build_spec(
            ClaudeTask("hi")
        )
    )
    assert oauth.secret is None
    volumes = oauth.pod["spec"]["volumes"]
    assert any(v.get("secret", {}).get("secretName") == "creds" for v in volumes)


@pytest.mark.parametrize(
    "credentials",
    [
        ClaudeCredentials.api_key(API_KEY),
        ClaudeCredentials.oauth_token(TOKEN),
        ClaudeCredentials.oauth_json(OAUTH),
    ],
    ids=["api_key", "oauth_token", "oauth_json"],
)
def test_no_value_in_pod_manifest_or_repr(credentials: ClaudeCredentials) -> None:
    """No credential value shows in the pod manifest, the spec repr or the credentials repr."""
    runner = _runner(credentials)
    spec = runner.build_spec(ClaudeTask("hi"))
    manifests = build_manifests(spec)
    for text in (json.dumps(manifests.pod), repr(spec), repr(credentials), repr(manifests)):
        for canary in CANARIES:
            assert canary not in text


# Every way a secret value can be handed to a ClaudeRunner: the leak scan covers each.
LEAK_CASES: dict[str, dict[str, object]] = {
    "api_key": {"credentials": ClaudeCredentials.api_key(API_KEY)},
    "oauth_token": {"credentials": ClaudeCredentials.oauth_token(TOKEN)},
    "oauth_json": {"credentials": ClaudeCredentials.oauth_json(OAUTH)},
    "auth_token": {
        "credentials": ClaudeCredentials.auth_token(TOKEN, base_url="http://127.0.0.1:9")
    },
    "proxy_token": {"credentials": ClaudeCredentials.proxy("http://127.0.0.1:9", token=TOKEN)},
    "bedrock_keys": {
        "credentials": ClaudeCredentials.bedrock(
            "us-east-1",
            access_key_id="AKIA-LEAKCANARY",
            secret_access_key="aws-LEAKCANARY-secret",
            session_token="aws-LEAKCANARY-session",
        )
    },
    "bedrock_api_key": {
        "credentials": ClaudeCredentials.bedrock("us-east-1", api_key="bedrock-LEAKCANARY")
    },
    "vertex_service_account": {
        "credentials": ClaudeCredentials.vertex(
            "us-east5",
            "my-project-123",
            service_account_json=json.dumps({"private_key": "gcp-LEAKCANARY-key"}),
        )
    },
    "telemetry_headers": {
        "credentials": ClaudeCredentials.api_key(SecretRef("team-claude", "api-key")),
        "telemetry": Telemetry(
            "http://127.0.0.1:4317", headers={"Authorization": f"Bearer {OTLP_TOKEN}"}
        ),
    },
}


@pytest.mark.parametrize("case", list(LEAK_CASES), ids=list(LEAK_CASES))
def test_no_value_in_anything_written_during_a_run(
    case: str, standin: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole run on the fake: only the Secret holds the value; pods, logs, results do not."""
    caplog.set_level(logging.DEBUG)
    options = LEAK_CASES[case]
    credentials = options["credentials"]
    assert isinstance(credentials, ClaudeCredentials)
    cluster = FakeCluster(runtime="local")
    if isinstance(credentials.value, SecretRef):
        cluster.backend.create(
            {
                "kind": "Secret",
                "metadata": {"name": credentials.value.name},
                "stringData": {credentials.value.key: "sk-ant-not-a-canary"},
            }
        )
    pod_runner = PodRunner(cluster.backend)
    with FakeMessagesAPI() as api:
        if credentials.base_url is not None:
            # A gateway: the stand-in, like the CLI, sends the token to it (a local one here).
            options = {**options, "credentials": attrs.evolve(credentials, base_url=api.url)}
        runner = ClaudeRunner(
            pod_runner,
            image="example.com/claude-code:2",
            claude_path=standin,
            home=str(tmp_path / "home"),
            launcher_environ={},
            env={"CLAUDE_STANDIN_REQUIRE_AUTH": "1"},
            timeout=60,
            **options,  # type: ignore[arg-type]
        )
        task = ClaudeTask("#tool-use check", output_format="stream-json")
        result = runner.run(task, check=False)
    written_api = [json.dumps(r.headers) + json.dumps(r.body) for r in api.requests]
    # The local runtime writes secret volumes under its own directory, not at the mount path,
    # so the OAuth file cannot be found there (the launcher tests cover that copy); the scan
    # still covers everything the failed run wrote.
    assert result.ok or credentials.kind == "oauth_json"
    written: list[str] = [result.text, repr(result), json.dumps(result.to_dict())]
    written += [repr(runner.credentials), repr(runner.telemetry), str(result.error)]
    written += [json.dumps(e) for e in result.events]
    assert result.run is not None
    written.append(result.run.logs)
    written += [record.getMessage() for record in caplog.records]
    for action in cluster.actions:
        if action.kind != "Secret":
            written.append(repr(action))
    # Every version the pod ever had (the run deleted it), every ConfigMap and every Event.
    versions = cluster.history("Pod", result.run.namespace, result.run.pod_name)
    assert versions
    written += [json.dumps(p) for p in versions]
    written += [json.dumps(c) for c in cluster.config_maps()]
    written += [json.dumps(e) for e in cluster.events()]
    written += written_api
    for text in written:
        for canary in CANARIES:
            assert canary not in text
    # The control: the value did travel, in the run's Secret and nowhere else.
    created = {a.name for a in cluster.actions if a.verb == "create" and a.kind == "Secret"}
    (secret_name,) = created - {getattr(credentials.value, "name", None)}
    assert secret_name is not None
    secrets = cluster.history("Secret", result.run.namespace, secret_name)
    decoded = [
        base64.b64decode(value).decode()
        for version in secrets
        for value in (version.get("data") or {}).values()
    ]
    assert any(canary in text for text in decoded for canary in CANARIES)
    pod_runner.close()


def test_inline_mode_warns_and_embeds() -> None:
    """inline=True warns, and (only then) the JSON is in the pod command."""
    with pytest.warns(InlineCredentialsWarning):
        credentials = ClaudeCredentials.oauth_json(OAUTH, inline=True)
    spec = _runner(credentials).build_spec(ClaudeTask("hi"))
    assert not spec.secret_files
    assert "LEAKCANARY-access" in spec.command[2]
    assert "LEAKCANARY" not in repr(credentials)


def test_inline_only_for_oauth_values() -> None:
    """inline=True makes no sense for a SecretRef or another kind."""
    with pytest.raises(SpecError):
        ClaudeCredentials.oauth_json(SecretRef("a", "b"), inline=True)
    with pytest.raises(SpecError):
        ClaudeCredentials("api_key", API_KEY, inline=True)


@pytest.mark.parametrize(
    ("factory", "value"),
    [
        (ClaudeCredentials.api_key, ""),
        (ClaudeCredentials.api_key, "two\nlines"),
        (ClaudeCredentials.oauth_token, "a\x00b"),
        (ClaudeCredentials.oauth_json, "not json LEAKCANARY"),
        (ClaudeCredentials.oauth_json, "[1]"),
        (ClaudeCredentials.api_key, 123),
    ],
)
def test_bad_values_are_refused_without_echo(factory: object, value: object) -> None:
    """Invalid credentials raise SpecError whose message never contains the value."""
    with pytest.raises(SpecError) as info:
        factory(value)  # type: ignore[operator]
    assert "LEAKCANARY" not in str(info.value)
    assert info.value.value == "<redacted>"


def test_from_environment_order(tmp_path: Path) -> None:
    """API key first, then OAuth token, then an explicitly given credentials file."""
    both = {"ANTHROPIC_API_KEY": API_KEY, "CLAUDE_CODE_OAUTH_TOKEN": TOKEN}
    assert ClaudeCredentials.from_environment(both).kind == "api_key"  # type: ignore[union-attr]
    token_only = {"CLAUDE_CODE_OAUTH_TOKEN": TOKEN}
    assert ClaudeCredentials.from_environment(token_only).kind == "oauth_token"  # type: ignore[union-attr]
    assert ClaudeCredentials.from_environment({}) is None
    path = tmp_path / ".credentials.json"
    path.write_text(OAUTH)
    found = ClaudeCredentials.from_environment({}, credentials_file=path)
    assert found is not None
    assert found.kind == "oauth_json"
    assert found.secret_values == (OAUTH,)
