"""API failures end in podrunner's classified errors, whichever CLI reports them."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest

from podrunner.claude import (
    ClaudeAPIError,
    ClaudeAuthError,
    ClaudeCredentials,
    ClaudeTask,
)
from podrunner.testing.messages_api import Reply

if TYPE_CHECKING:
    from collections.abc import Callable

    from podrunner.claude import ClaudeRunner
    from podrunner.testing.messages_api import FakeMessagesAPI

FORMATS = ["json", "stream-json"]


@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_an_auth_error(
    status: int, output_format: str, runner: ClaudeRunner, api: FakeMessagesAPI
) -> None:
    """401 (invalid key) and 403 (no permission) raise ClaudeAuthError, not retryable."""
    api.reset(default=Reply.error(status))
    with pytest.raises(ClaudeAuthError) as caught:
        runner.run(ClaudeTask("hi", output_format=output_format))  # type: ignore[arg-type]
    error = caught.value
    assert not error.retryable
    assert error.exit_code == 1
    assert error.result is not None
    assert error.result.cost_usd == 0


@pytest.mark.parametrize(
    ("status", "words"),
    [(429, "Request rejected (429)"), (529, "529 Overloaded"), (500, "500 Internal server error")],
)
def test_transient_api_errors_are_retryable(
    status: int, words: str, runner: ClaudeRunner, api: FakeMessagesAPI
) -> None:
    """Rate limits, overload and server errors: ClaudeAPIError with the status, retryable."""
    api.reset(default=Reply.error(status))
    with pytest.raises(ClaudeAPIError) as caught:
        runner.run(ClaudeTask("hi"))
    error = caught.value
    assert (error.status, error.retryable) == (status, True)
    assert words in error.cli_message
    assert error.result is not None
    assert error.result.raw is not None
    assert error.result.raw["api_error_status"] == status


def test_bad_request_is_not_retryable(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """A 400 will fail the same way again."""
    api.reset(default=Reply.error(400, message="messages: field required"))
    with pytest.raises(ClaudeAPIError) as caught:
        runner.run(ClaudeTask("hi"))
    assert (caught.value.status, caught.value.retryable) == (400, False)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_api(make_runner: Callable[..., ClaudeRunner]) -> None:
    """Nothing listening: a result with api_error connection_failed, a retryable API error."""
    runner = make_runner(env={"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{_closed_port()}"})
    with pytest.raises(ClaudeAPIError) as caught:
        runner.run(ClaudeTask("hi"))
    error = caught.value
    assert (error.status, error.retryable) == (None, True)
    assert error.result is not None
    assert error.result.raw is not None
    assert error.result.raw["is_error"] is True
    assert error.result.raw["api_error"] == "connection_failed"
    assert "Connection refused" in error.cli_message


def test_no_credentials(make_runner: Callable[..., ClaudeRunner], api: FakeMessagesAPI) -> None:
    """No key at all: an auth error before any API call."""
    runner = make_runner(credentials=None)
    with pytest.raises(ClaudeAuthError) as caught:
        runner.run(ClaudeTask("hi"))
    assert "Not logged in" in caught.value.cli_message
    assert api.message_requests == []


@pytest.mark.parametrize("bare", [True, False], ids=["bare", "control"])
def test_bare_reads_no_oauth_login(
    bare: bool, make_runner: Callable[..., ClaudeRunner], api: FakeMessagesAPI
) -> None:
    """--bare ignores an OAuth token: not logged in, no API call (without it, the token is sent).

    The runner refuses ``bare`` with OAuth credentials; this is the CLI behaviour behind that.
    """
    token = {"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-contract-bare"}
    runner = make_runner(credentials=None, env=token)
    api.script(Reply.text("Accepted."))
    result = runner.run(ClaudeTask("hi", bare=bare), check=False)
    if bare:
        assert isinstance(result.error, ClaudeAuthError)
        assert "Not logged in" in result.error.cli_message
        assert api.message_requests == []
    else:
        assert result.text == "Accepted."
        assert api.message_requests[0].headers["authorization"] == "<redacted>"


def test_expired_oauth_token(
    make_runner: Callable[..., ClaudeRunner], api: FakeMessagesAPI
) -> None:
    """An OAuth token the API refuses: one retry (two announced), then an auth error."""
    token = ClaudeCredentials.oauth_token("sk-ant-oat01-contract-expired")
    runner = make_runner(credentials=token, env={"CLAUDE_CODE_MAX_RETRIES": "10"})
    api.reset(default=Reply.error(401, message="OAuth token has expired"))
    with pytest.raises(ClaudeAuthError) as caught:
        runner.run(ClaudeTask("hi"))
    assert "OAuth token has expired" in caught.value.cli_message
    assert len(api.message_requests) == 2
    assert api.message_requests[0].headers["authorization"] == "<redacted>"


@pytest.mark.parametrize("status", [429, 529, 500])
def test_a_transient_error_is_retried_by_the_cli(
    status: int, make_runner: Callable[..., ClaudeRunner], api: FakeMessagesAPI
) -> None:
    """With retries allowed, one failure is retried inside the CLI (an api_retry event)."""
    api.script(
        Reply.error(status, retry_after=0 if status == 429 else None), Reply.text("Recovered.")
    )
    runner = make_runner(env={"CLAUDE_CODE_MAX_RETRIES": "1"})
    result = runner.run(ClaudeTask("hi", output_format="stream-json"))
    assert result.text == "Recovered."
    assert len(api.message_requests) == 2
    (retry,) = [e for e in result.events if e.get("subtype") == "api_retry"]
    assert (retry["attempt"], retry["error_status"]) == (1, status)


def test_repeated_overload(make_runner: Callable[..., ClaudeRunner], api: FakeMessagesAPI) -> None:
    """Overloaded three times in a row: the CLI stops (whatever its retry limit) and says so."""
    api.reset(default=Reply.error(529))
    runner = make_runner(env={"CLAUDE_CODE_MAX_RETRIES": "10"})
    with pytest.raises(ClaudeAPIError) as caught:
        runner.run(ClaudeTask("hi"))
    assert "Repeated 529 Overloaded errors" in caught.value.cli_message
    assert (caught.value.status, caught.value.retryable) == (529, True)
    assert len(api.message_requests) == 3
