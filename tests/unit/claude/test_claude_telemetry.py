"""Telemetry: the OpenTelemetry variables Claude Code reads, set from one option.

Collector headers carry tokens: they reach the container only through a Secret.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from podrunner.claude import ClaudeCredentials, ClaudeRunner, ClaudeTask, ClaudeWorker, Telemetry
from podrunner.errors import SpecError
from podrunner.manifest import build_manifests
from podrunner.run import PodRunner
from podrunner.spec import SecretRef
from podrunner.testing import FakeCluster

TOKEN = "otlp-LEAKCANARY-token-42"
IMAGE = "example.com/claude-code:2"


def _runner(telemetry: Telemetry, cluster: FakeCluster | None = None, **kw: Any) -> ClaudeRunner:
    return ClaudeRunner(
        PodRunner((cluster or FakeCluster()).backend),
        image=IMAGE,
        launcher_environ={},
        telemetry=telemetry,
        **kw,
    )


def _env(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}


def test_every_variable_from_one_option() -> None:
    """Each setting becomes the documented variable; plain ones are plain env values."""
    telemetry = Telemetry(
        "https://otel.example.com:4318",
        protocol="http/protobuf",
        resource_attributes={"team.id": "ml", "service.name": "review bot, v2"},
        traces=True,
        metric_export_interval=10,
        logs_export_interval=0.5,
        log_tool_details=True,
    )
    assert telemetry.env() == {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_TRACES_EXPORTER": "otlp",
        "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example.com:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_RESOURCE_ATTRIBUTES": "team.id=ml,service.name=review%20bot%2C%20v2",
        "OTEL_METRIC_EXPORT_INTERVAL": "10000",
        "OTEL_LOGS_EXPORT_INTERVAL": "500",
        "OTEL_LOG_TOOL_DETAILS": "1",
    }
    assert telemetry.secret_env() == {}
    env = _env(build_manifests(_runner(telemetry).build_spec(ClaudeTask("hi"))).pod)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "https://otel.example.com:4318"
    assert env["CLAUDE_CODE_ENABLE_TELEMETRY"]["value"] == "1"


def test_defaults_export_metrics_and_events_over_grpc_without_content() -> None:
    """By default: metrics and events over gRPC; no prompt text, no tool arguments, no traces."""
    env = Telemetry("http://collector:4317").env()
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert (env["OTEL_METRICS_EXPORTER"], env["OTEL_LOGS_EXPORTER"]) == ("otlp", "otlp")
    for name in ("OTEL_LOG_USER_PROMPTS", "OTEL_LOG_TOOL_DETAILS", "OTEL_TRACES_EXPORTER"):
        assert name not in env
    assert Telemetry("http://c:4317", logs=False).env()["OTEL_LOGS_EXPORTER"] == "none"


def test_header_values_go_through_the_per_run_secret() -> None:
    """Header values land in the run's Secret and reach the CLI by secretKeyRef only."""
    telemetry = Telemetry("https://otel.example.com", headers={"Authorization": f"Bearer {TOKEN}"})
    manifests = build_manifests(_runner(telemetry).build_spec(ClaudeTask("hi")))
    ref = _env(manifests.pod)["OTEL_EXPORTER_OTLP_HEADERS"]["valueFrom"]["secretKeyRef"]
    assert manifests.secret is not None
    assert ref["name"] == manifests.secret["metadata"]["name"]
    stored = base64.b64decode(manifests.secret["data"][ref["key"]]).decode()
    assert stored == f"Authorization=Bearer {TOKEN}"
    for shown in (json.dumps(manifests.pod), repr(telemetry), repr(manifests)):
        assert TOKEN not in shown


def test_header_secret_ref_is_referenced_not_copied() -> None:
    """Headers from your own Secret: referenced as is, and no per-run Secret is made."""
    telemetry = Telemetry("https://otel.example.com", headers=SecretRef("otel", "headers"))
    manifests = build_manifests(_runner(telemetry).build_spec(ClaudeTask("hi")))
    assert manifests.secret is None
    ref = _env(manifests.pod)["OTEL_EXPORTER_OTLP_HEADERS"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "otel", "key": "headers"}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"endpoint": "otel.example.com:4317"}, "telemetry.endpoint"),
        ({"endpoint": "ftp://otel.example.com"}, "telemetry.endpoint"),
        ({"endpoint": "http://"}, "telemetry.endpoint"),
        ({"endpoint": f"https://user:{TOKEN}@otel.example.com"}, "telemetry.endpoint"),
        ({"protocol": "http"}, "telemetry.protocol"),
        ({"headers": "Authorization=Bearer x"}, "telemetry.headers"),
        ({"headers": {"Bad Name": "x"}}, "telemetry.headers"),
        ({"headers": {"Authorization": f"Bearer {TOKEN},x=y"}}, "telemetry.headers[Authorization]"),
        ({"headers": {"Authorization": f"{TOKEN}\n"}}, "telemetry.headers[Authorization]"),
        ({"resource_attributes": {"a b": "x"}}, "telemetry.resource_attributes"),
        ({"resource_attributes": {"team": ""}}, "telemetry.resource_attributes[team]"),
        ({"metric_export_interval": 0}, "telemetry.metric_export_interval"),
        ({"logs_export_interval": "5"}, "telemetry.logs_export_interval"),
        ({"metrics": False, "logs": False}, "telemetry.metrics"),
        ({"log_user_prompts": 1}, "telemetry.log_user_prompts"),
    ],
)
def test_bad_settings_are_spec_errors_that_hide_tokens(kwargs: dict[str, Any], field: str) -> None:
    """Bad values fail on construction naming the field; a token is never in the message."""
    kwargs.setdefault("endpoint", "http://collector:4317")
    with pytest.raises(SpecError) as info:
        Telemetry(**kwargs)
    assert info.value.field == field
    assert TOKEN not in str(info.value)


def test_env_may_not_set_what_telemetry_sets() -> None:
    """A variable from both env= and telemetry= is refused: one source per variable."""
    with pytest.raises(SpecError) as info:
        _runner(Telemetry("http://c:4317"), env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:1"})
    assert info.value.field == "env[OTEL_EXPORTER_OTLP_ENDPOINT]"


def test_the_cli_in_the_pod_sees_the_settings(standin: str, tmp_path: Path) -> None:
    """A run on the local runtime: the CLI's environment holds every telemetry variable."""
    shared = tmp_path / "shared"
    shared.mkdir()
    for directory in (shared, *shared.parents):
        if directory == Path("/tmp"):
            break
        directory.chmod(directory.stat().st_mode | 0o711)
    record = shared / "record.jsonl"
    record.touch()
    shared.chmod(0o777)
    record.chmod(0o666)
    telemetry = Telemetry(
        "http://127.0.0.1:4317",
        headers={"Authorization": f"Bearer {TOKEN}"},
        resource_attributes={"team.id": "ml"},
    )
    cluster = FakeCluster(runtime="local")
    runner = _runner(
        telemetry,
        cluster,
        claude_path=standin,
        env={"CLAUDE_STANDIN_RECORD": str(record)},
        timeout=60,
    )
    result = runner.run(ClaudeTask("hi"))
    assert result.ok
    seen = json.loads(record.read_text().splitlines()[-1])["otel"]
    assert seen == {**telemetry.env(), "OTEL_EXPORTER_OTLP_HEADERS": "<set>"}
    runner.pod_runner.close()


def test_a_worker_with_telemetry_finds_its_pod_again() -> None:
    """The Secret holding credentials and headers is the worker's: a new process adopts it."""
    cluster = FakeCluster()
    answer = '{"type":"result","subtype":"success","is_error":false,"result":"ok"}'
    cluster.when(image=IMAGE).hang().exec_handler(lambda request: answer)
    runner = PodRunner(cluster.backend)
    options: dict[str, Any] = {
        "image": IMAGE,
        "credentials": ClaudeCredentials.api_key("sk-ant-worker"),
        "telemetry": Telemetry("http://c:4317", headers={"Authorization": f"Bearer {TOKEN}"}),
        "launcher_environ": {},
    }
    first = ClaudeWorker(runner, **options)
    assert first.run("one").ok
    first.detach()  # its process ended, leaving the pod
    again = ClaudeWorker(runner, **options)
    assert again.name == first.name
    assert again.run("two").ok
    again.stop()
    assert cluster.pods() == []
