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

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from podrunner.claude.refresh import claim
from podrunner.claude.runner import ClaudePods, claude_result, json_event, timeout_error
from podrunner.claude.sessions import claim_session
from podrunner.claude.task import ClaudeTask
from podrunner.errors import RunTimeout, SpecError
from podrunner.run.aio_runner import AsyncPodRunner

if TYPE_CHECKING:
    from podrunner.claude.result import ClaudeResult
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
        task = self._task(task)
        limit = self.timeout if timeout is None else timeout
        spec = self.build_spec(task)
        callback = _fan_out(on_log, on_event)
        with claim(self.credentials), claim_session(self.sessions, task):
            handle = await self.pod_runner.start(
                spec, timeout=limit, on_log=callback, cleanup=self.cleanup
            )
            async with handle:
                run = await _wait(handle, limit)
        return claude_result(task, run, check=check)

    async def stream(
        self,
        task: ClaudeTask | str,
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> AsyncIterator[dict[str, Any]]:
        """Run ``task`` and yield its JSON events as they arrive (use ``stream-json``).

        Once the last event is yielded the run is awaited and parsed as by :meth:`run`: a
        failed task raises its classified error from the iteration (with ``check=True``).
        Leaving the loop early, or cancelling it, deletes the pod.

        Args:
            task: The task, or just a prompt.
            timeout: Seconds for the whole run (pod start included); default: the runner's.
            check: Raise the classified :class:`~podrunner.claude.ClaudeError` at the end
                when the task failed.

        Yields:
            Each stream-json event (one JSON object per output line).

        Raises:
            ClaudeTimeout: The task ran out of time.
            ClaudeError: With ``check=True``, how the task failed.
            RunError: The pod never ran.
        """
        task = self._task(task)
        limit = self.timeout if timeout is None else timeout
        spec = self.build_spec(task)
        with claim(self.credentials), claim_session(self.sessions, task):
            handle = await self.pod_runner.start(spec, timeout=limit, cleanup=self.cleanup)
            async with handle:
                async for line in handle.logs():
                    event = json_event(line)
                    if event is not None:
                        yield event
                run = await _wait(handle, limit)
        claude_result(task, run, check=check)

    def _task(self, task: ClaudeTask | str) -> ClaudeTask:
        """The task, refusing what this runner cannot do before any API call."""
        if self._writes_back():
            raise SpecError(
                "credentials.write_back",
                True,
                "is not supported by AsyncClaudeRunner (storing a refreshed OAuth file execs "
                "into the pod mid-run); use ClaudeRunner, or write_back=False",
            )
        return ClaudeTask(task) if isinstance(task, str) else task


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
