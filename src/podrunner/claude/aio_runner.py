"""AsyncClaudeRunner: one Claude Code task per ephemeral pod, for coroutines.

It builds the same pod as :class:`~podrunner.claude.ClaudeRunner` (both are a
:class:`~podrunner.claude.runner.ClaudePods`), runs it on an
:class:`~podrunner.AsyncPodRunner` and parses the output into the same
:class:`~podrunner.claude.ClaudeResult`, with the same error classification. Cancelling the
task that awaits a run deletes its pod, Secret and ConfigMap before ``CancelledError``
propagates.

Credentials with ``write_back`` are refused: storing a refreshed OAuth file execs into the pod
mid-run, which only :class:`~podrunner.claude.ClaudeRunner` does.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from podrunner.claude.refresh import claim
from podrunner.claude.runner import ClaudePods, claude_result, json_event, timeout_error
from podrunner.claude.sessions import claim_session
from podrunner.errors import RunTimeout, SpecError
from podrunner.run.aio_runner import AsyncPodRunner

if TYPE_CHECKING:
    from podrunner.claude.result import ClaudeResult
    from podrunner.claude.task import ClaudeTask
    from podrunner.run.aio_handle import AsyncRunHandle
    from podrunner.run.outcome import RunResult

__all__ = ["AsyncClaudeRunner", "AsyncEventCallback", "AsyncLogCallback"]

AsyncEventCallback = Callable[[Mapping[str, Any]], "Awaitable[object] | object"]
"""Called with each stream-json event as it arrives; a plain or a coroutine function."""
AsyncLogCallback = Callable[[str], "Awaitable[object] | object"]
"""Called with each output line as it arrives; a plain or a coroutine function."""


class AsyncClaudeRunner(ClaudePods[AsyncPodRunner]):
    """Runs Claude Code tasks, each in a fresh pod, through an :class:`~podrunner.AsyncPodRunner`.

    It takes the arguments of :class:`~podrunner.claude.ClaudeRunner`, with an
    ``AsyncPodRunner`` in place of the ``PodRunner``::

        runner = AsyncClaudeRunner(AsyncPodRunner(backend), image="...", credentials=...)
        result = await runner.run("Summarise README.md")
    """

    async def run(
        self,
        task: ClaudeTask | str,
        *,
        timeout: float | None = None,
        check: bool = True,
        on_log: AsyncLogCallback | None = None,
        on_event: AsyncEventCallback | None = None,
    ) -> ClaudeResult:
        """Run ``task`` in a new pod and return the parsed result.

        The arguments are those of :meth:`ClaudeRunner.run
        <podrunner.claude.ClaudeRunner.run>`; ``on_log`` and ``on_event`` may be coroutine
        functions.

        Returns:
            The result, with the pod's :class:`~podrunner.RunResult` in ``result.run``.

        Raises:
            ClaudeTimeout: The task ran out of time (always raised; partial output attached).
            ClaudeError: With ``check=True``, how the task failed.
            RunError: The pod never ran (image pull error, unschedulable...).
            SpecError: The task or the runner's settings are invalid.
            asyncio.CancelledError: The awaiting task was cancelled; the pod was cleaned up.
        """
        task, limit = self._prepared(task, timeout)
        async with self._started(task, limit, _fan_out(on_log, on_event)) as handle:
            run = await _wait(handle, limit)
        return claude_result(task, run, check=check)

    async def stream(
        self,
        task: ClaudeTask | str,
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Run ``task`` and yield its JSON events as they arrive (use ``stream-json``).

        The arguments, the events and the end of the stream are those of
        :meth:`ClaudeRunner.stream <podrunner.claude.ClaudeRunner.stream>`. Cancelling the
        task while it waits for an event deletes the pod, its Secret and ConfigMap at once.
        After leaving the loop early (``break``, an exception in its body) that happens when
        the stream is closed: iterate inside ``contextlib.aclosing(runner.stream(...))`` or
        call ``aclose()`` (otherwise the event loop closes it some time later).

        Yields:
            Each stream-json event, as a ``dict``.

        Raises:
            ClaudeError: With ``check=True``, how the task failed; ``ClaudeTimeout`` (always)
                when it ran out of time.
            RunError: The pod never ran.
            SpecError: The task or the runner's settings are invalid.
            asyncio.CancelledError: The awaiting task was cancelled; the pod was cleaned up.
        """
        task, limit = self._prepared(task, timeout)
        async with self._started(task, limit, None) as handle:
            async for line in handle.logs():
                event = json_event(line)
                if event is not None:
                    yield event
            run = await _wait(handle, limit)
        claude_result(task, run, check=check)

    @contextlib.asynccontextmanager
    async def _started(
        self, task: ClaudeTask, limit: float | None, on_log: AsyncLogCallback | None
    ) -> AsyncIterator[AsyncRunHandle]:
        """Start ``task``'s pod; on exit clean it up (also when cancelled)."""
        with claim(self.credentials), claim_session(self.sessions, task):
            handle = await self.pod_runner.start(
                self.build_spec(task), timeout=limit, on_log=on_log, cleanup=self.cleanup
            )
            async with handle:
                yield handle

    def _prepared(
        self, task: ClaudeTask | str, timeout: float | None
    ) -> tuple[ClaudeTask, float | None]:
        """As for the sync runner, refusing first what only the sync runner can do."""
        if self._writes_back():
            raise SpecError(
                "credentials.write_back",
                True,
                "is not supported by AsyncClaudeRunner (storing a refreshed OAuth file execs "
                "into the pod mid-run); use ClaudeRunner, or write_back=False",
            )
        return super()._prepared(task, timeout)


async def _wait(handle: AsyncRunHandle, limit: float | None) -> RunResult:
    try:
        return await handle.wait()
    except RunTimeout as exc:
        raise timeout_error(exc, limit) from exc


def _fan_out(
    on_log: AsyncLogCallback | None, on_event: AsyncEventCallback | None
) -> AsyncLogCallback | None:
    """One ``on_log`` for the pod runner: the lines to ``on_log``, the events to ``on_event``."""
    if on_log is None and on_event is None:
        return None

    async def on_line(line: str) -> None:
        if on_log is not None:
            await _call(on_log, line)
        event = json_event(line) if on_event is not None else None
        if event is not None and on_event is not None:
            await _call(on_event, event)

    return on_line


async def _call(callback: Callable[[Any], object], arg: object) -> None:
    outcome = callback(arg)
    if inspect.isawaitable(outcome):
        await outcome
