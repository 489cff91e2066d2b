"""AsyncClaudeWorker: :class:`~podrunner.claude.ClaudeWorker` for coroutines.

The same worker (one named pod, one ``exec`` per task, the same ownership proof, names and
labels), kept by an :class:`~podrunner.AsyncPodPool` on an :class:`~podrunner.AsyncPodRunner`.
A worker made by either finds and uses the other's pod. Cancelling the task that awaits a
task's exec takes the pod with it, as an interrupted task does in the sync worker: the CLI may
still be running in it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from podrunner.claude.aio_runner import AsyncClaudeRunner
from podrunner.claude.refresh import claim
from podrunner.claude.sessions import claim_session
from podrunner.claude.worker import _spent, _WorkerParts
from podrunner.errors import NotFound, RunTimeout
from podrunner.run.aio_pool import AsyncPodPool

if TYPE_CHECKING:
    from collections.abc import Mapping

    from podrunner.claude.credentials import ClaudeCredentials
    from podrunner.claude.result import ClaudeResult
    from podrunner.claude.task import ClaudeTask
    from podrunner.run.aio_runner import AsyncPodRunner

__all__ = ["AsyncClaudeWorker"]


class AsyncClaudeWorker(_WorkerParts["AsyncPodRunner"]):
    """A persistent Claude Code pod that runs tasks one at a time, for coroutines.

    It takes the arguments of :class:`~podrunner.claude.ClaudeWorker`, with an
    ``AsyncPodRunner`` in place of the ``PodRunner``; the methods that talk to the cluster are
    coroutines and the worker is an async context manager::

        async with AsyncClaudeWorker(AsyncPodRunner(backend), image="...") as worker:
            first = await worker.run("Read src/ and list the modules")

    Credentials with ``write_back`` are refused, as :class:`AsyncClaudeRunner` refuses them.
    """

    def __init__(
        self,
        pod_runner: AsyncPodRunner,
        *,
        image: str,
        credentials: ClaudeCredentials | None = None,
        name: str | None = None,
        worker_id: str | None = None,
        start_timeout: float = 120.0,
        exec_timeout: float | None = 600.0,
        **pod_options: Any,
    ) -> None:
        super().__init__(
            pod_runner,
            AsyncClaudeRunner,
            image=image,
            credentials=credentials,
            name=name,
            worker_id=worker_id,
            start_timeout=start_timeout,
            exec_timeout=exec_timeout,
            pod_options=pod_options,
        )
        self._lock = asyncio.Lock()
        self.pool = self._new_pool()
        """The pool of one pod behind the worker."""

    def _new_pool(self) -> AsyncPodPool:
        return AsyncPodPool(
            self.pod_runner, self.spec, 1, adopt=self._adopt, **self._pool_settings()
        )

    @property
    def recreated(self) -> int:
        """How many times the pod was (re)created by this object."""
        return self._retired + self.pool.created

    # -- the pod -------------------------------------------------------------------------------

    async def ensure_running(self) -> dict[str, Any]:
        """Make sure the worker pod exists and is ready; return it.

        Raises:
            WorkerOwnershipError: The pod (or its Secret) under this name is not this worker's.
            RunError: The pod did not start (see :meth:`ClaudeWorker.ensure_running
                <podrunner.claude.ClaudeWorker.ensure_running>`).
        """
        async with self._lock:
            return await self._ensure_running()

    async def _ensure_running(self) -> dict[str, Any]:
        while True:
            await self.pool.wait_ready()
            with contextlib.suppress(NotFound):  # gone since: wait for the next one
                return await self.pod_runner.api.get("Pod", self.namespace, self.name)

    async def _adopt(self, obj: Mapping[str, Any]) -> None:
        """The pool's check of an object under the worker's names (see ``ClaudeWorker``)."""
        if obj.get("kind", "Pod") != "Pod":
            self._check_in_the_way(obj)
            return
        secret = None
        if self._secret_name is not None:
            with contextlib.suppress(NotFound):
                secret = await self.pod_runner.api.get("Secret", self.namespace, self._secret_name)
        self._check_pod(obj, secret)

    async def recreate(self) -> None:
        """Delete the pod and start a new one.

        See :meth:`ClaudeWorker.recreate <podrunner.claude.ClaudeWorker.recreate>`.
        """
        async with self._lock:
            await self.pool.refresh()
            await self._ensure_running()

    async def stop(self) -> None:
        """Delete the worker pod, if this object used it.

        See :meth:`ClaudeWorker.stop <podrunner.claude.ClaudeWorker.stop>`.
        """
        async with self._lock:
            pool = self.pool
            await pool.close()
            self._retired += pool.created
            self.pool = self._new_pool()
            if self._secret_name is None:
                return
            try:
                secret = await self.pod_runner.api.get("Secret", self.namespace, self._secret_name)
            except NotFound:
                return
            if _spent(secret, pool.used_uids):
                await self.pod_runner.api.delete_quietly(
                    "Secret", self.namespace, self._secret_name
                )

    async def detach(self) -> None:
        """Let go of the pod without deleting it, for a later worker to adopt.

        See :meth:`ClaudeWorker.detach <podrunner.claude.ClaudeWorker.detach>`.
        """
        async with self._lock:
            pool = self.pool
            await pool.detach()
            self._retired += pool.created
            self.pool = self._new_pool()

    async def __aenter__(self) -> AsyncClaudeWorker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- tasks ---------------------------------------------------------------------------------

    async def run(
        self, task: ClaudeTask | str, *, timeout: float | None = None, check: bool = True
    ) -> ClaudeResult:
        """Run ``task`` in the worker pod and return the parsed result.

        The arguments and errors are :meth:`ClaudeWorker.run
        <podrunner.claude.ClaudeWorker.run>`'s.
        """
        task, limit, command = self._prepared(task, timeout)
        async with self._lock:
            with claim(self._pods.credentials), claim_session(self._pods.sessions, task):
                try:
                    async with self.pool.claim(timeout=limit) as pod:
                        done = await self.pool.exec_in(
                            pod, command, stdin=task.stdin().encode("utf-8"), timeout=limit
                        )
                except RunTimeout as exc:
                    raise self._timed_out(limit) from exc
        return self._result(done, task, check)
