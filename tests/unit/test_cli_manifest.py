"""Tests for the `podrunner manifest` and `podrunner version` commands."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml
from click.testing import CliRunner

from podrunner import __version__
from podrunner.cli import main


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_manifest_yaml_pod_only() -> None:
    """A plain spec prints one YAML document: the Pod with every option applied."""
    code, out, _ = invoke(
        "manifest",
        "--image=busybox:1.36",
        "--name=demo",
        "--namespace=agents",
        "--env=FOO=bar=baz",
        "--label=team=ml",
        "--cpu-limit=500m",
        "--memory-limit=512Mi",
        "--cpu-request=100m",
        "--memory-request=128Mi",
        "--service-account=runner",
        "--image-pull-policy=Always",
        "--run-id=r1",
        "--",
        "sh",
        "-c",
        "echo hi --not-an-option",
    )
    assert code == 0
    docs = list(yaml.safe_load_all(out))
    assert len(docs) == 1
    pod = docs[0]
    assert pod["metadata"]["name"] == "demo"
    assert pod["metadata"]["namespace"] == "agents"
    assert pod["metadata"]["labels"]["team"] == "ml"
    assert pod["metadata"]["labels"]["podrunner.dev/run-id"] == "r1"
    c = pod["spec"]["containers"][0]
    assert c["command"] == ["sh", "-c", "echo hi --not-an-option"]
    assert c["env"] == [{"name": "FOO", "value": "bar=baz"}]
    assert c["imagePullPolicy"] == "Always"
    assert c["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert pod["spec"]["serviceAccountName"] == "runner"


def test_manifest_json_with_secret_is_a_list() -> None:
    """With a secret, JSON output is a v1 List holding the Secret then the Pod."""
    code, out, _ = invoke(
        "manifest", "--image", "img", "--secret-env", "TOKEN=x", "-o", "json", "--", "true"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["kind"] == "List"
    assert [o["kind"] for o in doc["items"]] == ["Secret", "Pod"]


def test_manifest_json_pod_alone_and_security() -> None:
    """Without a secret, JSON output is the Pod; --security none drops security contexts."""
    code, out, _ = invoke(
        "manifest", "--image", "img", "--security", "none", "--output", "json", "--", "true"
    )
    assert code == 0
    pod = json.loads(out)
    assert pod["kind"] == "Pod"
    assert "securityContext" not in pod["spec"]


def test_spec_error_is_one_line_exit_2() -> None:
    """A SpecError prints one clear stderr line naming the field, and exits 2."""
    code, out, err = invoke("manifest", "--image", "img", "--cpu-limit", "lots", "--", "true")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith('podrunner: error: resources.cpu_limit: "lots" is invalid')
    code, _, err = invoke(
        "manifest", "--image", "img", "--label", "app.kubernetes.io/component=x", "--", "true"
    )
    assert code == 2
    assert "reserved" in err


def test_usage_errors() -> None:
    """Missing command or malformed K=V are click usage errors (exit 2)."""
    assert invoke("manifest", "--image", "img")[0] == 2
    code, _, err = invoke("manifest", "--image", "img", "--env", "NOEQUALS", "--", "true")
    assert code == 2
    assert "KEY=VALUE" in err


def test_version() -> None:
    """`podrunner version` and `--version` print the version."""
    assert invoke("version")[1] == f"podrunner {__version__}\n"
    assert __version__ in invoke("--version")[1]


def test_console_script_in_subprocess() -> None:
    """The module runs as a real process and prints a parseable manifest."""
    out = subprocess.run(
        [sys.executable, "-m", "podrunner.cli", "manifest", "--image", "img", "--", "echo", "hi"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert yaml.safe_load(out)["spec"]["containers"][0]["command"] == ["echo", "hi"]
