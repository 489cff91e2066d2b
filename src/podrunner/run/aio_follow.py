"""The log follower for coroutines: a task that streams a run's log into the core's collector.

The twin of :mod:`podrunner.run.follow`: it reconnects from the last timestamp until the pod's
status says the container is done, and the log is completed with one non-following read when
the run ends. Stopping it is cancelling its task: a cancelled task feeds nothing more, so the
collector needs no lock. Lines reach the user's ``on_log`` (sync or async) through
:meth:`AsyncLogFollower.flush`, in order, from whichever task read them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from podrunner.errors import BackendError, BadRequest, NotFound, TooManyRequests, Unauthorized
from podrunner.run.aio_retry import AsyncRetryingBackend
from podrunner.run.core import RunCore

__all__ = ["AsyncLogFollower"]


class AsyncLogFollower:
    """Follows one run's log in a task of its own, and completes it at the end.

    Args:
        api: Where to read the log.
        core: The run (its identity, state and log collector).
        refresh: Reads the pod once (when a stream ends: is the container done?).
        flush: Hands the lines read so far to the user's callbacks (may raise theirs).
        failed: Called with an exception that ended the follower task (a callback's, or a
            bug's): the run stops and the caller sees it.
    """

    def __init__(
        self,
        api: AsyncRetryingBackend,
        core: RunCore,
        *,
        refresh: Callable[[], Awaitable[None]],
        flush: Callable[[], Awaitable[None]],
        failed: Callable[[BaseException], None],
    ) -> None:
        self._api = api
        self._core = core
        self._refresh = refresh
        self._flush = flush
        self._failed = failed
        self._task: asyncio.Task[None] | None = None
        self._abandoned = False
        self._draining: asyncio.Lock | None = None
        self.drained = False
        """Whether the log was completed by a non-following read."""

    @property
    def done(self) -> bool:
        """Whether the follower task ran and ended (``False`` if it never started)."""
        return self._task is not None and self._task.done()

    def ensure(self) -> None:
        """Start following, unless already started (or stopped)."""
        if self._task is None and not self._abandoned:
            self._task = asyncio.get_running_loop().create_task(
                self._follow(), name=f"podrunner-logs-{self._core.run.pod_name}"
            )

    def stop(self) -> None:
        """Stop following: the task is cancelled and feeds the collector nothing more."""
        self._abandoned = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def _stopped(self) -> bool:
        """Whether :meth:`stop` was called (read afresh: another task may set it)."""
        return self._abandoned

    async def drain(self) -> str:
        """Complete the log before the pod is deleted; return a note if it is incomplete."""
        self.stop()
        if self._draining is None:
            self._draining = asyncio.Lock()
        async with self._draining:
            if self.drained:
                return ""
            note = await self._read_rest()
        await self._flush()
        return note

    async def drain_best_effort(self) -> None:
        """Take what the log has now, without failing."""
        with contextlib.suppress(BackendError):
            await self.drain()

    # -- the task ------------------------------------------------------------------------------

    async def _follow(self) -> None:
        try:
            await self._follow_until_done()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if not self._abandoned:
                self._failed(exc)

    async def _follow_until_done(self) -> None:
        api, core = self._api, self._core
        policy = api.policy
        failures = 0
        since = 0.0
        while not self._stopped():
            try:
                await self._read(follow=True)
                failures = 0
            except NotFound:
                return
            except BackendError as exc:
                failures += 1
                now = api.clock.monotonic()
                since = now if failures == 1 else since
                if failures > policy.attempts * 4 and policy.exhausted(failures, exc, now - since):
                    return
            if self._stopped():
                return
            # The stream ended: only the pod status says whether the container is done.
            if not core.state.terminal:
                await self._refresh()
            if core.state.terminal or core.gone:
                await self._drain_from_task()
                return
            await api.clock.sleep(min(1.0, policy.backoff * max(1, failures)))

    async def _drain_from_task(self) -> None:
        if self._draining is None:
            self._draining = asyncio.Lock()
        async with self._draining:
            if not self.drained:
                await self._read_rest()
        await self._flush()

    # -- reads ---------------------------------------------------------------------------------

    async def _read(self, *, follow: bool) -> None:
        """One log request from the last timestamp; raises on a broken stream."""
        collector = self._core.logs
        since = collector.since_time
        collector.begin_stream()
        run = self._core.run
        stream = await self._api.read_log(
            run.namespace,
            run.pod_name,
            run.container,
            follow=follow,
            timestamps=True,
            since_time=since,
        )
        try:
            async for chunk in stream:
                collector.feed(chunk)
                await self._flush()
        except BaseException:
            if not (follow and self._abandoned):
                collector.end_stream(complete=False)
            raise
        finally:
            await asyncio.shield(stream.aclose())
        # A follow stream that ended may have been cut: its partial line comes again.
        collector.end_stream(complete=not follow)
        await self._flush()

    async def _read_rest(self) -> str:
        """Read what the log has that the collector lacks; return a note if incomplete."""
        api = self._api
        attempt = 0
        refreshed = False
        since = api.clock.monotonic()
        while True:
            try:
                await self._read(follow=False)
                self.drained = True
                return ""
            except NotFound:
                return "logs unavailable: the pod was deleted before they could be read"
            except BadRequest as exc:
                return f"logs unavailable: {exc.message}"
            except Unauthorized:
                if refreshed or not await api.refresh_credentials():
                    return "logs unavailable: unauthorized"
                refreshed = True
            except BackendError as exc:
                attempt += 1
                if api.policy.exhausted(attempt, exc, api.clock.monotonic() - since):
                    return f"logs incomplete: {exc}"
                delay = exc.retry_after if isinstance(exc, TooManyRequests) else None
                await api.clock.sleep(delay or api.policy.delay(attempt))
