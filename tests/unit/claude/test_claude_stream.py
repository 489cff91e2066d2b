"""Live events: ClaudeRunner.stream(), partial messages, and a log stream dropped mid-run.

The stand-in CLI runs as a local process in pods of the fake cluster. With
``CLAUDE_STANDIN_EVENT_DELAY`` it prints its events over time, so the log is read while the
run is still going, as a real model's output is.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from claude_util import leftovers, standin_runner

from podrunner import AsyncPodRunner
from podrunner.claude import (
    AsyncClaudeRunner,
    ClaudeCredentials,
    ClaudeMaxTurns,
    ClaudeRunner,
    ClaudeTask,
    ClaudeTimeout,
)
from podrunner.errors import SpecError
from podrunner.run import PodRunner
from podrunner.testing import FakeCluster

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

TOOL_USE = ClaudeTask("#tool-use review", output_format="stream-json")
PARTIAL = TOOL_USE.replace(include_partial_messages=True)


class Boom(Exception):
    """What the loop body raises."""


@pytest.fixture
def sigint_handled() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in this test, however the suite was launched.

    A process started in the background by a non-interactive shell (as CI may start the
    tests) inherits SIGINT ignored, and then ``_thread.interrupt_main`` does nothing.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster(runtime="local")


@pytest.fixture
def pods(cluster: FakeCluster) -> Iterator[PodRunner]:
    runner = PodRunner(cluster.backend)
    try:
        yield runner
    finally:
        runner.close()


def make(pod_runner: Any, standin: str, tmp_path: Path, *, delay: float = 0, **options: Any) -> Any:
    """The stand-in's runner; with ``delay``, seconds between the CLI's events."""
    env = {"CLAUDE_STANDIN_EVENT_DELAY": str(delay)} if delay else None
    return standin_runner(pod_runner, standin, str(tmp_path / "home"), env=env, **options)


def signature(event: Mapping[str, Any]) -> tuple[Any, ...]:
    """What an event says, without what differs between two runs (ids, times)."""
    inner = event.get("event") or {}
    delta = inner.get("delta") or {}
    message = event.get("message") or {}
    blocks = [b.get("type") for b in message.get("content") or []]
    return (event["type"], event.get("subtype"), inner.get("type"), delta.get("text"), blocks)


def test_stream_yields_what_on_event_gets(claude_runner: ClaudeRunner) -> None:
    """The sync iterator yields the same events, in the same order, as the callback gets."""
    seen: list[Mapping[str, Any]] = []
    result = claude_runner.run(TOOL_USE, on_event=seen.append)
    streamed = list(claude_runner.stream(TOOL_USE))
    assert [signature(e) for e in streamed] == [signature(e) for e in seen]
    assert [signature(e) for e in result.events] == [signature(e) for e in seen]
    assert (streamed[0]["subtype"], streamed[-1]["type"]) == ("init", "result")
    assert all(isinstance(e, dict) for e in streamed)


def test_stream_raises_the_classified_error_at_the_end(claude_runner: ClaudeRunner) -> None:
    """A failed task streams all its events, then raises its error from the iteration."""
    seen: list[str] = []

    def consume() -> None:
        for event in claude_runner.stream(TOOL_USE.replace(max_turns=1)):
            seen.append(str(event["type"]))

    with pytest.raises(ClaudeMaxTurns) as info:
        consume()
    assert seen[-1] == "result"
    assert info.value.result is not None
    assert info.value.result.num_turns == 2


def test_stream_with_check_false_ends_quietly(claude_runner: ClaudeRunner) -> None:
    """With check=False a failed task's stream just ends after its result event."""
    events = list(claude_runner.stream(TOOL_USE.replace(max_turns=1), check=False))
    assert events[-1]["subtype"] == "error_max_turns"


def test_stream_refuses_a_bad_task_before_any_api_call(
    pods: PodRunner, cluster: FakeCluster, standin: str, tmp_path: Path
) -> None:
    """A SpecError comes at the first next(), before anything is created."""
    runner = make(pods, standin, tmp_path)
    before = len(cluster.actions)
    with pytest.raises(SpecError) as info:
        next(runner.stream(ClaudeTask("x" * 2_000_000)))
    assert info.value.field == "prompt"
    assert not [a for a in cluster.actions[before:] if a.verb == "create"]


@pytest.mark.parametrize("how", ["break", "exception", "ctrl-c in body", "ctrl-c waiting", "close"])
def test_leaving_the_stream_early_deletes_pod_secret_and_config_map(
    pods: PodRunner,
    cluster: FakeCluster,
    standin: str,
    tmp_path: Path,
    how: str,
    sigint_handled: None,
) -> None:
    """Break, an exception or Ctrl-C in the loop, or closing a held stream: nothing stays."""
    runner = make(
        pods,
        standin,
        tmp_path,
        # Waiting: the next event is far off, so the interrupt lands in the wait even on a
        # loaded machine (at 0.3 s the stream could end before a starved timer fired).
        delay=2.0 if how == "ctrl-c waiting" else 0.3,
        credentials=ClaudeCredentials.api_key("sk-ant-test"),
        managed_settings={"permissions": {"deny": ["WebFetch"]}},
    )
    raised = {"exception": Boom, "ctrl-c in body": KeyboardInterrupt}.get(how)
    expected: type[BaseException] | None = raised or (
        KeyboardInterrupt if how == "ctrl-c waiting" else None
    )
    kinds: set[str] = set()
    held = runner.stream(PARTIAL)
    # Only "close" keeps a reference: the others leave the loop with nothing holding it.
    with pytest.raises(expected) if expected else contextlib.nullcontext():
        for n, event in enumerate(held if how == "close" else runner.stream(PARTIAL)):
            if n:
                continue  # Ctrl-C may land here rather than in the iterator's wait
            assert event["subtype"] == "init"
            kinds = {name.split("/")[0] for name in leftovers(cluster)}
            if raised is not None:
                raise raised("from the loop")
            if how == "ctrl-c waiting":
                # Ctrl-C while the iterator waits for the CLI's next event.
                threading.Timer(0.05, _thread.interrupt_main).start()
                continue
            break
    if how == "close":
        assert leftovers(cluster) != []  # held: the run goes on until it is closed
        held.close()
    assert kinds == {"Pod", "Secret", "ConfigMap"}
    assert leftovers(cluster) == []


def test_partial_messages_stream_the_words_and_keep_the_result(claude_runner: ClaudeRunner) -> None:
    """stream_event events carry the model's words as they come; the result is unchanged."""
    plain = claude_runner.run(TOOL_USE)
    events = list(claude_runner.stream(PARTIAL))
    partial = claude_runner.run(PARTIAL)
    inner = [e["event"] for e in events if e["type"] == "stream_event"]
    assert [e["type"] for e in inner if e["type"].startswith("message_")] == [
        "message_start",
        "message_delta",
        "message_stop",
    ] * 2
    words = [
        e["delta"]["text"]
        for e in inner
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"
    ]
    assert "".join(words).endswith(partial.text)
    tool_json = "".join(
        e["delta"]["partial_json"]
        for e in inner
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    )
    assert '"git diff --stat"' in tool_json
    # Each block's assistant event comes right before its content_block_stop, as in 2.1.332.
    for i, event in enumerate(events):
        if event["type"] == "assistant":
            assert events[i + 1]["event"]["type"] == "content_block_stop"
    assert (partial.text, partial.num_turns, partial.cost_usd, partial.usage) == (
        plain.text,
        plain.num_turns,
        plain.cost_usd,
        plain.usage,
    )
    assert [signature(e) for e in partial.events] == [signature(e) for e in events]


def test_partial_messages_need_stream_json() -> None:
    """The CLI refuses --include-partial-messages without stream-json: so does ClaudeTask."""
    with pytest.raises(SpecError) as info:
        ClaudeTask("hi", include_partial_messages=True)
    assert (info.value.field, info.value.value) == ("include_partial_messages", True)
    assert "output_format='stream-json', not 'json'" in str(info.value)


# -- a log stream dropped mid-run -----------------------------------------------------------


def _sync(runner: ClaudeRunner, how: str) -> list[Mapping[str, Any]]:
    if how == "iterator":
        return list(runner.stream(PARTIAL))
    seen: list[Mapping[str, Any]] = []
    runner.run(PARTIAL, on_event=seen.append)
    return seen


async def _async(runner: AsyncClaudeRunner, how: str) -> list[Mapping[str, Any]]:
    if how == "async iterator":
        return [event async for event in runner.stream(PARTIAL)]
    seen: list[Mapping[str, Any]] = []

    async def on_event(event: Mapping[str, Any]) -> None:
        seen.append(event)

    await runner.run(PARTIAL, on_event=on_event)
    return seen


def _events(
    cluster: FakeCluster, standin: str, tmp_path: Path, how: str
) -> list[Mapping[str, Any]]:
    if how.startswith("async"):

        async def main() -> list[Mapping[str, Any]]:
            async with AsyncPodRunner(cluster.async_backend) as pods:
                return await _async(make(pods, standin, tmp_path, delay=0.02), how)

        return asyncio.run(main())
    pods = PodRunner(cluster.backend)
    try:
        return _sync(make(pods, standin, tmp_path, delay=0.02), how)
    finally:
        pods.close()


@pytest.mark.parametrize("how", ["iterator", "callback", "async iterator", "async callback"])
def test_a_dropped_log_stream_loses_and_doubles_nothing(
    cluster: FakeCluster, standin: str, tmp_path: Path, how: str
) -> None:
    """The log connection is cut twice mid-run: every event arrives once, in order."""
    expected = _events(cluster, standin, tmp_path, how)
    cuts = cluster.fault(verb="read_log", cut_log_after_lines=9, times=2)
    got = _events(cluster, standin, tmp_path, how)
    assert cuts.fired == 2
    assert [signature(e) for e in got] == [signature(e) for e in expected]
    assert len({e["uuid"] for e in got}) == len(got) > 40
    assert leftovers(cluster) == []


def test_stream_stops_at_its_timeout(
    pods: PodRunner, cluster: FakeCluster, standin: str, tmp_path: Path
) -> None:
    """A slow CLI's stream ends at the run's timeout with ClaudeTimeout, nothing left.

    The log iterator used to wait for the container however long it ran.
    """
    runner = make(pods, standin, tmp_path, delay=1.0)  # ~40 events: ~40 s unbounded
    events: list[Mapping[str, Any]] = []
    started = time.monotonic()
    with pytest.raises(ClaudeTimeout):
        events.extend(runner.stream(PARTIAL, timeout=3.0))
    assert time.monotonic() - started < 20
    assert events  # what arrived before the deadline was delivered
    assert leftovers(cluster) == []
