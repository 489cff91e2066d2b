"""OAuth credentials files with a rotating refresh token: detection, one user, write-back.

The stand-in CLI refreshes an expired login the way the real one does (new access and refresh
tokens in ``$HOME/.claude/.credentials.json``); ``$CLAUDE_STANDIN_OAUTH_SERVER`` plays the
token server, which revokes a refresh token once used. So a second run from the same copy
fails to log in, as it does against Anthropic.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from podrunner.claude import ClaudeAuthError, ClaudeCredentials, ClaudeRunner
from podrunner.claude.launch import LAUNCHER_SCRIPT
from podrunner.claude.refresh import (
    COLLECTED_FLAG,
    REFRESHED_MARKER,
    ClaudeCredentialsInUse,
    CredentialsNotWrittenBack,
    claim,
)
from podrunner.errors import SpecError
from podrunner.run import PodRunner
from podrunner.spec import SecretRef
from podrunner.testing import FakeCluster

if TYPE_CHECKING:
    from pathlib import Path

IMAGE = "example.com/claude-code:2"


def login(expires_at: int = 1) -> str:
    """A /login credentials file; expired by default, so the CLI refreshes it."""
    oauth = {
        "accessToken": "sk-ant-oat01-LEAKCANARY-access",
        "refreshToken": "sk-ant-ort01-LEAKCANARY-refresh",
        "expiresAt": expires_at,
        "scopes": ["user:inference"],
    }
    return json.dumps({"claudeAiOauth": oauth})


def test_refreshable_is_detected_from_the_file() -> None:
    """A file with a refresh token is refreshable; a reference is assumed to be; tokens not."""
    assert ClaudeCredentials.oauth_json(login()).refreshable
    assert ClaudeCredentials.oauth_json(SecretRef("claude", "login")).refreshable
    assert not ClaudeCredentials.oauth_json('{"claudeAiOauth": {"accessToken": "a"}}').refreshable
    assert not ClaudeCredentials.oauth_token("sk-ant-oat01-x").refreshable


def test_a_second_run_with_one_login_is_refused_before_any_call() -> None:
    """While one run holds a refreshable login, another is refused, pointing at setup-token."""
    cluster = FakeCluster()
    credentials = ClaudeCredentials.oauth_json(login())
    runner = ClaudeRunner(
        PodRunner(cluster.backend), image=IMAGE, credentials=credentials, launcher_environ={}
    )
    with claim(credentials), pytest.raises(ClaudeCredentialsInUse) as info:
        runner.run("hi")
    assert "claude setup-token" in str(info.value)
    assert "LEAKCANARY" not in str(info.value)
    assert cluster.actions == []
    # Released after use; a copy with the same value is the same login.
    with claim(ClaudeCredentials.oauth_json(login())):
        pass
    with claim(credentials):
        pass


def test_concurrent_use_can_be_allowed_and_tokens_are_never_claimed() -> None:
    """allow_concurrent=True opts out; long-lived tokens and keys need no claim."""
    shared_ok = ClaudeCredentials.oauth_json(login(), allow_concurrent=True)
    with claim(shared_ok), claim(shared_ok):
        pass
    token = ClaudeCredentials.oauth_token("sk-ant-oat01-x")
    with claim(token), claim(token):
        pass


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: ClaudeCredentials.oauth_json(login(), write_back=True), "write_back"),
        (lambda: ClaudeCredentials("api_key", "k", write_back=True), "write_back"),
        (lambda: ClaudeCredentials("oauth_token", "t", allow_concurrent=True), "allow_concurrent"),
        (lambda: ClaudeCredentials.oauth_json(login(), write_back="yes"), "write_back"),
    ],
)
def test_write_back_options_are_checked(make: Any, field: str) -> None:
    """write_back=True needs a Secret to write to; the options only apply to OAuth files."""
    with pytest.raises(SpecError) as info:
        make()
    assert info.value.field == field


def test_the_launcher_and_the_collector_agree() -> None:
    """The script prints the marker the runner waits for and waits for the flag it writes."""
    assert REFRESHED_MARKER in LAUNCHER_SCRIPT
    assert COLLECTED_FLAG in LAUNCHER_SCRIPT


@pytest.fixture
def server(shared: Path) -> Path:
    """The token server's memory of used refresh tokens (readable by the pod's user)."""
    path = shared / "oauth-server.json"
    path.write_text("{}")
    path.chmod(0o666)
    return path


def _runner(
    standin: str, server: Path, credentials: ClaudeCredentials, cluster: FakeCluster
) -> ClaudeRunner:
    return ClaudeRunner(
        PodRunner(cluster.backend),
        image=IMAGE,
        credentials=credentials,
        claude_path=standin,
        launcher_environ={},
        env={"CLAUDE_STANDIN_REQUIRE_AUTH": "1", "CLAUDE_STANDIN_OAUTH_SERVER": str(server)},
        timeout=120,
    )


def test_without_write_back_the_copy_goes_stale(standin: str, server: Path) -> None:
    """The failure this guards against: run one refreshes, run two from the copy is logged out."""
    runner = _runner(
        standin, server, ClaudeCredentials.oauth_json(login()), FakeCluster(runtime="local")
    )
    assert runner.run("first").ok
    with pytest.raises(ClaudeAuthError) as info:
        runner.run("second")
    assert "revoked" in info.value.cli_message


def test_write_back_to_a_callable_keeps_the_login_alive(
    standin: str, server: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The refreshed file reaches the callable and the runner; no token is written elsewhere."""
    caplog.set_level(logging.DEBUG)
    stored: list[str] = []
    cluster = FakeCluster(runtime="local")
    credentials = ClaudeCredentials.oauth_json(login(), write_back=stored.append)
    runner = _runner(standin, server, credentials, cluster)
    first = runner.run("first")
    assert first.ok
    (text,) = stored
    refreshed = json.loads(text)["claudeAiOauth"]
    assert refreshed["refreshToken"] == "sk-ant-ort01-LEAKCANARY-refresh-r1"
    assert runner.credentials is not None
    assert runner.credentials.value == text
    second = runner.run("second")  # starts from the refreshed copy: still logged in
    assert second.ok
    assert len(stored) == 1  # nothing new to store: the token was still fresh
    # The refreshed tokens went to the callable only: not to logs, objects or messages.
    written = [first.run.logs, second.run.logs, repr(first), repr(runner.credentials)]  # type: ignore[union-attr]
    written += [r.getMessage() for r in caplog.records]
    written += [repr(a) for a in cluster.actions if a.kind != "Secret"]
    for result in (first, second):
        assert result.run is not None
        written += [json.dumps(p) for p in cluster.history("Pod", "default", result.run.pod_name)]
    written += [json.dumps(e) for e in cluster.events()]
    written += [json.dumps(c) for c in cluster.config_maps()]
    assert not [t for t in written if "-r1" in t and "LEAKCANARY" in t]
    assert REFRESHED_MARKER in first.run.logs  # type: ignore[union-attr]


def test_write_back_patches_the_referenced_secret(standin: str, server: Path) -> None:
    """write_back=True with a SecretRef: the Secret's key holds the refreshed file after."""
    cluster = FakeCluster(runtime="local")
    cluster.backend.create(
        {"kind": "Secret", "metadata": {"name": "claude-login"}, "stringData": {"json": login()}}
    )
    credentials = ClaudeCredentials.oauth_json(SecretRef("claude-login", "json"), write_back=True)
    runner = _runner(standin, server, credentials, cluster)
    assert runner.run("first").ok
    secret = cluster.backend.get("Secret", "default", "claude-login")
    stored = json.loads(base64.b64decode(secret["data"]["json"]))
    assert stored["claudeAiOauth"]["refreshToken"].endswith("-r1")
    assert runner.run("second").ok


def test_a_failed_collection_warns_that_the_copy_is_stale(standin: str, server: Path) -> None:
    """No pods/exec (403): the run's answer stands, and a warning says the copy went stale."""
    cluster = FakeCluster(runtime="local")
    cluster.fault(verb="exec", status=403)
    stored: list[str] = []
    credentials = ClaudeCredentials.oauth_json(login(), write_back=stored.append)
    runner = _runner(standin, server, credentials, cluster)
    runner.collect_seconds = 2  # nobody will collect: do not wait the default minute
    with pytest.warns(CredentialsNotWrittenBack, match="claude setup-token") as caught:
        result = runner.run("first")
    assert result.ok
    assert stored == []
    assert "LEAKCANARY" not in str(caught[0].message)
