"""ClaudeRunner: the hardened pod, and end-to-end runs of the stand-in CLI on the fake cluster."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from podrunner.claude import (
    ClaudeAuthError,
    ClaudeBudgetExceeded,
    ClaudeCLINotFound,
    ClaudeCredentials,
    ClaudeMaxTurns,
    ClaudeRunner,
    ClaudeTask,
    ClaudeTimeout,
    cli_exit_code,
    format_cli_result,
    run_claude_cli,
)
from podrunner.claude.runner import PROMPT_MOUNT
from podrunner.errors import ImagePullError, SpecError
from podrunner.manifest import build_manifests
from podrunner.run import PodRunner
from podrunner.testing import FakeCluster

if TYPE_CHECKING:
    from pathlib import Path

    from podrunner.backends.fake.scripting import ContainerContext


def _pod(runner: ClaudeRunner, task: ClaudeTask) -> dict[str, Any]:
    return build_manifests(runner.build_spec(task)).pod


def test_pod_is_hardened() -> None:
    """Container name, labels, restricted security, read-only root and writable HOME, /tmp."""
    runner = ClaudeRunner(
        PodRunner(FakeCluster().backend),
        image="example.com/claude-code:2",
        launcher_environ={"CLAUDECODE": "1", "CLAUDE_CODE_ENTRYPOINT": "cli", "PATH": "/bin"},
    )
    pod = _pod(runner, ClaudeTask("hi"))
    spec = pod["spec"]
    container = spec["containers"][0]
    assert container["name"] == "claude-code"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "claude-runner"
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "podrunner"
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["fsGroup"] == 10001
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/home/claude"]]["emptyDir"] == {"sizeLimit": "1Gi"}
    assert volumes[mounts["/tmp"]]["emptyDir"] == {"sizeLimit": "512Mi"}
    env = container["env"]
    assert env[:2] == [
        {"name": "CLAUDECODE", "value": ""},
        {"name": "CLAUDE_CODE_ENTRYPOINT", "value": ""},
    ]
    assert {"name": "HOME", "value": "/home/claude"} in env
    assert all(e["name"] != "PATH" for e in env)
    assert container["command"][:2] == ["sh", "-c"]


def test_blanked_name_set_explicitly_is_not_duplicated() -> None:
    """A launcher CLAUDE* name that the pod sets itself appears once, with the pod's value."""
    runner = ClaudeRunner(
        PodRunner(FakeCluster().backend),
        image="example.com/claude-code:2",
        launcher_environ={"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "0"},
    )
    env = _pod(runner, ClaudeTask("hi"))["spec"]["containers"][0]["env"]
    entries = [e for e in env if e["name"] == "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"]
    assert entries == [{"name": "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "value": "1"}]


def test_invalid_settings_fail_early() -> None:
    """A root user or a bad image is refused when the runner is built."""
    with pytest.raises(SpecError):
        ClaudeRunner(PodRunner(FakeCluster().backend), image="example.com/c:1", run_as_user=0)
    with pytest.raises(SpecError):
        ClaudeRunner(PodRunner(FakeCluster().backend), image="")


def test_end_to_end_json(claude_runner: ClaudeRunner) -> None:
    """The stand-in runs in a pod and the answer, cost, session and model come back."""
    result = claude_runner.run(ClaudeTask("Say hello", model="sonnet"))
    assert result.ok
    assert result.text.startswith("You asked (9 bytes")
    assert result.cost_usd == pytest.approx(0.0123)
    assert result.session_id
    assert result.model == "claude-sonnet-5-5"  # 2.1.332 maps the alias so
    assert result.usage.output_tokens == 57
    assert result.run is not None
    assert result.run.exit_code == 0
    assert result.exit_code == 0


def test_end_to_end_stream_events(claude_runner: ClaudeRunner) -> None:
    """stream-json events come back in the result and live through on_event."""
    seen: list[str] = []
    result = claude_runner.run(
        ClaudeTask("#tool-use review", output_format="stream-json"),
        on_event=lambda e: seen.append(str(e["type"])),
    )
    assert [e["type"] for e in result.events] == seen
    assert seen[0] == "system"
    assert seen[-1] == "result"
    assert result.num_turns == 3


def test_end_to_end_structured(claude_runner: ClaudeRunner) -> None:
    """--json-schema yields the structured answer."""
    schema = {"type": "object", "properties": {"verdict": {"type": "string"}}}
    result = claude_runner.run(ClaudeTask("review", json_schema=schema))
    assert result.structured == {"verdict": "example"}


def test_end_to_end_budget_and_turns(claude_runner: ClaudeRunner) -> None:
    """Budget and turn limits raise typed errors that keep the cost; check=False flags them."""
    with pytest.raises(ClaudeBudgetExceeded) as budget:
        claude_runner.run(ClaudeTask("#budget everything", max_budget_usd=0.01))
    assert budget.value.result is not None
    assert budget.value.result.cost_usd == pytest.approx(0.014)
    result = claude_runner.run(ClaudeTask("#tool-use x", max_turns=1), check=False)
    assert isinstance(result.error, ClaudeMaxTurns)
    assert result.run is not None
    assert result.run.exit_code == 1
    assert cli_exit_code(result) == 3


def test_end_to_end_auth_error(local_runner: PodRunner, standin: str, tmp_path: Path) -> None:
    """Without credentials the CLI's login message surfaces as ClaudeAuthError."""
    runner = ClaudeRunner(
        local_runner,
        image="example.com/claude-code:2",
        claude_path=standin,
        home=str(tmp_path),
        launcher_environ={},
        env={"CLAUDE_STANDIN_REQUIRE_AUTH": "1"},
    )
    with pytest.raises(ClaudeAuthError, match="Please run /login"):
        runner.run("hello")
    key = ClaudeRunner(
        local_runner,
        image="example.com/claude-code:2",
        claude_path=standin,
        home=str(tmp_path),
        launcher_environ={},
        env={"CLAUDE_STANDIN_REQUIRE_AUTH": "1"},
        credentials=ClaudeCredentials.api_key("sk-ant-test"),
    )
    assert key.run("hello").ok


def test_cli_not_found(local_runner: PodRunner, tmp_path: Path) -> None:
    """An image without the CLI exits 127, reported as ClaudeCLINotFound."""
    runner = ClaudeRunner(
        local_runner,
        image="example.com/no-claude:1",
        claude_path="definitely-not-a-claude-binary",
        home=str(tmp_path),
        launcher_environ={},
    )
    with pytest.raises(ClaudeCLINotFound, match="not found"):
        runner.run("hi")


def test_timeout(claude_runner: ClaudeRunner) -> None:
    """A task that outlives its timeout raises ClaudeTimeout and its pod is gone."""
    runner = claude_runner
    runner.env["CLAUDE_STANDIN_SLEEP"] = "30"
    with pytest.raises(ClaudeTimeout) as info:
        runner.run("#slow", timeout=1.5)
    assert info.value.retryable
    assert isinstance(info.value, TimeoutError)
    assert runner.pod_runner.backend.list("Pod", "default").items == []


def test_image_pull_error_propagates() -> None:
    """A pod that never runs raises the SDK's RunError, not a Claude error."""
    cluster = FakeCluster()
    cluster.when(image="example.com/missing:*").image_pull_error()
    runner = ClaudeRunner(
        PodRunner(cluster.backend), image="example.com/missing:1", launcher_environ={}
    )
    with pytest.raises(ImagePullError):
        runner.run("hi")


def test_large_prompt_goes_through_config_map(standin: str, tmp_path: Path) -> None:
    """A prompt over 100 KB is put in a ConfigMap mounted read-only and piped to stdin."""
    cluster = FakeCluster()
    prompt = "Review this:\n" + "ü" * 80_000 + "\n$(reboot)"
    seen: dict[str, Any] = {}
    record = tmp_path / "record.jsonl"

    def run_container(ctx: ContainerContext) -> tuple[int, str]:
        # Play the kubelet: materialise the mounted ConfigMap, then run the real command.
        pod = ctx.pod
        mounts = pod["spec"]["containers"][0]["volumeMounts"]
        mount = next(m for m in mounts if m["mountPath"] == PROMPT_MOUNT)
        volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
        name = volume["configMap"]["name"]
        cm = cluster.backend.get("ConfigMap", "default", name)
        seen.update(mount=mount, config_map=cm, argv=ctx.argv)
        local = tmp_path / "prompt"
        local.write_text(cm["data"]["prompt"])
        argv = [a.replace(f"{PROMPT_MOUNT}/prompt", str(local)) for a in ctx.argv]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CLAUDE_STANDIN_RECORD": str(record)}
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout + done.stderr

    cluster.when(image="example.com/claude-code:*").run(run_container)
    runner = ClaudeRunner(
        PodRunner(cluster.backend),
        image="example.com/claude-code:2",
        claude_path=standin,
        launcher_environ={},
    )
    result = runner.run(ClaudeTask(prompt))
    assert result.ok
    assert seen["mount"]["readOnly"] is True
    assert seen["config_map"]["data"]["prompt"] == prompt
    labels = seen["config_map"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "claude-runner"
    assert seen["config_map"]["metadata"]["ownerReferences"][0]["kind"] == "Pod"
    assert prompt not in seen["argv"]
    assert json.loads(record.read_text())["prompt"] == prompt
    names = [i["metadata"]["name"] for i in cluster.backend.list("ConfigMap", "default").items]
    assert names == ["kube-root-ca.crt"]  # only what the cluster itself publishes


def test_prompt_too_large_for_config_map() -> None:
    """Prompts above what a ConfigMap holds are refused before anything is created."""
    cluster = FakeCluster()
    runner = ClaudeRunner(
        PodRunner(cluster.backend), image="example.com/claude-code:2", launcher_environ={}
    )
    with pytest.raises(SpecError, match="1 MiB"):
        runner.run("x" * 1_100_000)
    assert cluster.backend.list("Pod", "default").items == []


def test_run_claude_cli_helper(local_runner: PodRunner, standin: str, tmp_path: Path) -> None:
    """The CLI helper takes the image from the environment and never raises for task errors."""
    environ = {"PODRUNNER_CLAUDE_IMAGE": "example.com/claude-code:2", "CLAUDECODE": "1"}
    result = run_claude_cli(
        local_runner,
        "#budget x",
        max_budget_usd=0.01,
        claude_path=standin,
        environ=environ,
        home=str(tmp_path),
    )
    assert isinstance(result.error, ClaudeBudgetExceeded)
    assert cli_exit_code(result) == 3
    assert format_cli_result(result).startswith("error: the task reached its budget")
    ok = run_claude_cli(
        local_runner, "hello", claude_path=standin, environ=environ, home=str(tmp_path)
    )
    text = format_cli_result(ok)
    assert "cost: $0.0123" in text
    assert f"session: {ok.session_id}" in text
    assert json.loads(format_cli_result(ok, "json"))["session_id"] == ok.session_id
    assert cli_exit_code(ok) == 0
    with pytest.raises(SpecError, match="PODRUNNER_CLAUDE_IMAGE"):
        run_claude_cli(local_runner, "hi", environ={})
