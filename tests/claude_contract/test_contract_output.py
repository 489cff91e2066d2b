"""Prompts on stdin, and json / stream-json output parsed into ClaudeResult."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from contract_util import result_text, texts, tool_names, tool_results

from podrunner.claude import ClaudeTask
from podrunner.testing.messages_api import Reply

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from podrunner.claude import ClaudeRunner
    from podrunner.testing.messages_api import FakeMessagesAPI

SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string"}, "issues": {"type": "array"}},
    "required": ["verdict", "issues"],
}


def test_prompt_on_stdin(make_runner: Callable[..., ClaudeRunner], api: FakeMessagesAPI) -> None:
    """With every prompt through the ConfigMap and stdin, the model still gets it whole."""
    prompt = "Summarise this:\n" + "line of a long document\n" * 2000
    api.script(Reply.text("A summary."))
    result = make_runner(prompt_stdin_threshold=0).run(ClaudeTask(prompt))
    assert result.text == "A summary."
    assert prompt in texts(api.message_requests[0], "user")


def test_json_result(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """Json output: the answer, the session, the model, one turn, no events kept."""
    api.script(Reply.text("The answer is 4."))
    result = runner.run(ClaudeTask("What is 2+2?", model="claude-sonnet-4-5-20250929"))
    assert (result.ok, result.text, result.num_turns) == (True, "The answer is 4.", 1)
    assert result.model == "claude-sonnet-4-5-20250929"
    assert result.subtype == "success"
    assert result.exit_code == 0
    assert result.session_id is not None
    assert result.events == ()
    assert result.raw is not None
    assert result.raw["type"] == "result"


def test_stream_json_events(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """stream-json: init, the assistant's words and the result, delivered live and kept."""
    api.script(Reply.text("Hello there."))
    seen: list[Mapping[str, Any]] = []
    result = runner.run(ClaudeTask("hi", output_format="stream-json"), on_event=seen.append)
    kinds = [(e.get("type"), e.get("subtype")) for e in result.events]
    assert kinds[0] == ("system", "init")
    assert kinds[-1] == ("result", "success")
    assert ("assistant", None) in kinds
    assert [e["type"] for e in seen] == [e["type"] for e in result.events]
    init = result.events[0]
    assert init["session_id"] == result.session_id
    assert init["model"] == result.model
    assert result.text == "Hello there."


def test_tool_use_turn(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """The model runs a command: the CLI executes it and sends the output back."""
    api.script(
        Reply.tool_use(
            "Bash", {"command": "echo hi-from-the-pod", "description": "Say hi"}, text="Checking."
        ),
        Reply.text("It printed hi."),
    )
    result = runner.run(ClaudeTask("Run echo", output_format="stream-json"))
    assert (result.text, result.num_turns) == ("It printed hi.", 2)
    assert len(api.message_requests) == 2
    (sent,) = tool_results(api.message_requests[1])
    assert result_text(sent) == "hi-from-the-pod"
    assert not sent.get("is_error")
    blocks = [b for e in result.events if e["type"] == "assistant" for b in e["message"]["content"]]
    assert [b["type"] for b in blocks] == ["text", "tool_use", "text"]
    tool_events = [e for e in result.events if e["type"] == "user"]
    assert tool_events[0]["message"]["content"][0]["content"] == "hi-from-the-pod"


def test_permission_denied(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """A command that changes files is refused without a rule: the denial is reported."""
    api.script(
        Reply.tool_use("Bash", {"command": "touch made-by-claude"}), Reply.text("Could not.")
    )
    result = runner.run(ClaudeTask("Make a file"))
    assert result.ok
    (denial,) = result.permission_denials
    assert denial["tool_name"] == "Bash"
    assert denial["tool_input"] == {"command": "touch made-by-claude"}
    (sent,) = tool_results(api.message_requests[1])
    assert sent["is_error"] is True


def test_permission_granted_by_rule(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """The same command runs when an allowed_tools rule covers it."""
    api.script(Reply.tool_use("Bash", {"command": "touch made-by-claude"}), Reply.text("Done."))
    result = runner.run(ClaudeTask("Make a file", allowed_tools=["Bash(touch:*)"]))
    assert result.permission_denials == ()
    (sent,) = tool_results(api.message_requests[1])
    assert not sent.get("is_error")


def test_structured_output(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """json_schema: the CLI offers a StructuredOutput tool; its input is the answer."""
    verdict = {"verdict": "approve", "issues": ["none"]}
    api.script(Reply.tool_use("StructuredOutput", verdict))
    result = runner.run(ClaudeTask("Review", json_schema=SCHEMA))
    assert result.structured == verdict
    tool = next(t for t in api.message_requests[0].body["tools"] if t["name"] == "StructuredOutput")
    assert tool["input_schema"] == SCHEMA


def test_structured_output_missing(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """A model that never calls StructuredOutput is asked once more, then the task fails."""
    api.script(Reply.text("No JSON here."), Reply.text("Still none."))
    result = runner.run(ClaudeTask("Review", json_schema=SCHEMA), check=False)
    assert result.error is not None
    assert type(result.error).__name__ == "ClaudeOutputError"
    assert len(api.message_requests) == 2
    assert "StructuredOutput" in texts(api.message_requests[1], "user")[-1]


def test_json_verbose_array(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """Json with --verbose (through extra_args) prints one array of events; it still parses."""
    api.script(Reply.text("In an array."))
    result = runner.run(ClaudeTask("hi", extra_args=["--verbose"]))
    assert result.ok
    assert result.text == "In an array."


def test_tools_offered(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """The default tool set includes the ones these tests drive."""
    runner.run(ClaudeTask("hi"))
    assert {"Bash", "Read", "Write"} <= set(tool_names(api.message_requests[0]))


def _partial_shape(event: Mapping[str, Any]) -> tuple[Any, ...]:
    """An event of a partial-messages run, without ids, times and the init's details."""
    if event["type"] != "stream_event":
        blocks = [b["type"] for b in (event.get("message") or {}).get("content") or []]
        return (event["type"], event.get("subtype"), blocks)
    inner = dict(event["event"])
    inner.pop("message", None)  # message_start: ids and usage, checked below
    block = inner.get("content_block")
    if isinstance(block, dict) and "id" in block:
        inner["content_block"] = {**block, "id": "<id>"}
    return ("stream_event", inner)


def test_partial_messages(runner: ClaudeRunner, api: FakeMessagesAPI) -> None:
    """--include-partial-messages: the API's stream, wrapped as stream_event, live and in order.

    Each block's assistant event comes right before its content_block_stop; ping is dropped;
    the result (text, turns, cost) is the same as without the flag.
    """
    api.script(
        Reply.tool_use("Bash", {"command": "echo hi", "description": "Say hi"}, text="Checking."),
        Reply.text("It printed hi."),
    )
    task = ClaudeTask(
        "Run echo",
        output_format="stream-json",
        include_partial_messages=True,
        allowed_tools=["Bash(echo:*)"],
    )
    events = list(runner.stream(task))
    shapes = [_partial_shape(e) for e in events]
    turn = [
        ("system", "status", []),
        ("stream_event", {"type": "message_start"}),
        ("stream_event", {"type": "content_block_start", "index": 0,
                          "content_block": {"type": "text", "text": ""}}),
    ]  # fmt: skip
    assert shapes[1:4] == turn
    assert ("assistant", None, ["tool_use"]) in shapes
    assert shapes[-1] == ("result", "success", [])
    assert all(s[1] != {"type": "ping"} for s in shapes)
    for i, event in enumerate(events):
        if event["type"] == "assistant":
            assert shapes[i + 1][1]["type"] == "content_block_stop"
    wrapped = [e for e in events if e["type"] == "stream_event"]
    assert {tuple(e)[:5] for e in wrapped} == {
        ("type", "event", "session_id", "parent_tool_use_id", "uuid")
    }
    assert all(e["api_message_id"] == e["event"]["message"]["id"] for e in wrapped
               if e["event"]["type"] == "message_start")  # fmt: skip
    last = max(i for i, e in enumerate(wrapped) if e["event"]["type"] == "message_start")
    deltas = [e["event"].get("delta") or {} for e in wrapped[last:]]
    assert "".join(d.get("text", "") for d in deltas) == "It printed hi."
    result = events[-1]
    assert (result["result"], result["num_turns"]) == ("It printed hi.", 2)
