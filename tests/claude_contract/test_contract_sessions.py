"""Session transcripts and --resume, in one pod (a ClaudeWorker: one HOME for every task).

Resuming in another pod needs the transcripts to outlive the pod (a session store); that is
tested where the store is.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from contract_util import texts

from podrunner.claude import ClaudeExecutionError, ClaudeTask
from podrunner.claude.runner import CLAUDE_CONTAINER
from podrunner.testing.messages_api import Reply

if TYPE_CHECKING:
    from podrunner.claude import ClaudeWorker
    from podrunner.testing.messages_api import FakeMessagesAPI

SESSION = "0d9c2a8e-3c4b-4f7e-9a61-5b2f8e1d7c30"


def _pod_shell(worker: ClaudeWorker, script: str) -> str:
    done = worker.pod_runner.api.exec(
        worker.namespace, worker.name, CLAUDE_CONTAINER, ["sh", "-c", script], timeout=30
    )
    assert done.exit_code == 0, done.stderr
    return done.stdout.decode()


def test_transcript_where_claude_code_keeps_it(worker: ClaudeWorker, api: FakeMessagesAPI) -> None:
    """A run writes $HOME/.claude/projects/<cwd with - for / and .>/<session id>.jsonl."""
    api.script(Reply.text("Noted: the code word is heron."))
    result = worker.run(ClaudeTask("The code word is heron.", session_id=SESSION))
    assert result.session_id == SESSION
    found = _pod_shell(worker, 'cd "$HOME/.claude/projects" && printf "%s\\n" */*.jsonl').split()
    cwd = _pod_shell(worker, "pwd").strip()
    slug = "".join(c if c.isalnum() else "-" for c in cwd)
    assert f"{slug}/{SESSION}.jsonl" in found
    lines = _pod_shell(worker, f'cat "$HOME/.claude/projects/{slug}/{SESSION}.jsonl"').splitlines()
    entries = [json.loads(line) for line in lines]
    user = [e for e in entries if e.get("type") == "user"]
    assert user[0]["message"]["content"] == "The code word is heron."
    assert {e.get("sessionId") for e in entries if "sessionId" in e} == {SESSION}


def test_resume_sends_the_earlier_turns(worker: ClaudeWorker, api: FakeMessagesAPI) -> None:
    """--resume continues the session: the model sees the first exchange, the id stays."""
    api.script(Reply.text("Noted: the code word is heron."), Reply.text("It was heron."))
    worker.run(ClaudeTask("The code word is heron.", session_id=SESSION))
    result = worker.run(ClaudeTask("What was the code word?", resume=SESSION))
    assert result.session_id == SESSION
    said = texts(api.message_requests[1])
    first = said.index("The code word is heron.")
    assert said.index("Noted: the code word is heron.") > first
    assert said.index("What was the code word?") > first
    assert said[-1] == "What was the code word?"


def test_fork_starts_a_new_session(worker: ClaudeWorker, api: FakeMessagesAPI) -> None:
    """--fork-session: the history comes along under a new session id."""
    api.script(Reply.text("First."), Reply.text("Forked."))
    worker.run(ClaudeTask("Start.", session_id=SESSION))
    result = worker.run(ClaudeTask("Branch off.", resume=SESSION, fork_session=True))
    assert result.session_id not in (None, SESSION)
    assert "Start." in texts(api.message_requests[1])


def test_resume_of_an_unknown_session(worker: ClaudeWorker, api: FakeMessagesAPI) -> None:
    """An id with no transcript: exit 1 without a result, the CLI's words kept."""
    with pytest.raises(ClaudeExecutionError) as caught:
        worker.run(ClaudeTask("hi", resume=SESSION))
    assert f"No conversation found with session ID: {SESSION}" in caught.value.cli_message
    assert caught.value.exit_code == 1
    assert api.message_requests == []


def test_session_id_in_use(worker: ClaudeWorker, api: FakeMessagesAPI) -> None:
    """A session id can start one session only."""
    worker.run(ClaudeTask("first", session_id=SESSION))
    with pytest.raises(ClaudeExecutionError) as caught:
        worker.run(ClaudeTask("second", session_id=SESSION))
    assert f"Session ID {SESSION} is already in use" in caught.value.cli_message
    assert len(api.message_requests) == 1


def test_no_session_persistence(worker: ClaudeWorker, api: FakeMessagesAPI) -> None:
    """--no-session-persistence writes no transcript, so the session cannot be resumed."""
    worker.run(ClaudeTask("first", session_id=SESSION, extra_args=["--no-session-persistence"]))
    with pytest.raises(ClaudeExecutionError) as caught:
        worker.run(ClaudeTask("again", resume=SESSION))
    assert "No conversation found" in caught.value.cli_message
