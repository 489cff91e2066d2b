"""The sync backend protocol over an async backend, so the contract suite holds both to it.

Each call runs as a coroutine on an event loop of the bridge's own thread and the test waits
for its answer; streams are iterated one ``__anext__`` at a time. What the suite sees is
exactly what an async caller gets: the same objects, errors, stream ends and virtual time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from podrunner.backends.base import (
    AsyncBackend,
    AsyncExecStream,
    AsyncStream,
    Clock,
    ExecChunk,
    ExecResult,
    Kind,
    ObjectList,
    WatchEvent,
)

_T = TypeVar("_T")


class SyncOverAsync:
    """A :class:`~podrunner.backends.base.Backend` whose every call is the async backend's."""

    def __init__(self, inner: AsyncBackend, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="contract-async-bridge", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run one coroutine on the bridge's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def create(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        return self.run(self.inner.create(manifest, dry_run=dry_run))

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        return self.run(self.inner.get(kind, namespace, name))

    def list(self, kind: Kind, namespace: str | None, **kw: Any) -> ObjectList:
        return self.run(self.inner.list(kind, namespace, **kw))

    def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return self.run(self.inner.replace(manifest))

    def patch(self, kind: Kind, namespace: str | None, name: str, patch: Any, **kw: Any) -> Any:
        return self.run(self.inner.patch(kind, namespace, name, patch, **kw))

    def delete(self, kind: Kind, namespace: str | None, name: str, **kw: Any) -> None:
        self.run(self.inner.delete(kind, namespace, name, **kw))

    def watch(self, kind: Kind, namespace: str | None, **kw: Any) -> Iterator[WatchEvent]:
        return _Iterator(self, self.run(self.inner.watch(kind, namespace, **kw)))

    def read_log(self, namespace: str, pod: str, container: str | None = None, **kw: Any) -> Any:
        return _Iterator(self, self.run(self.inner.read_log(namespace, pod, container, **kw)))

    def exec(
        self, namespace: str, pod: str, container: str | None, argv: Sequence[str], **kw: Any
    ) -> ExecResult:
        return self.run(self.inner.exec(namespace, pod, container, argv, **kw))

    def open_exec(
        self, namespace: str, pod: str, container: str | None, argv: Sequence[str], **kw: Any
    ) -> _ExecStream:
        return _ExecStream(
            self, self.run(self.inner.open_exec(namespace, pod, container, argv, **kw))
        )

    def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        return self.run(self.inner.request(method, path, **kw))  # type: ignore[attr-defined]

    def refresh_credentials(self) -> bool:
        return self.run(self.inner.refresh_credentials())

    def close(self) -> None:
        # The backend's close ends every connection itself: the loop may stop right after.
        self.run(self.inner.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class _Iterator(Iterator[_T]):
    def __init__(self, bridge: SyncOverAsync, stream: AsyncStream[_T]) -> None:
        self._bridge = bridge
        self._stream = stream

    def __next__(self) -> _T:
        try:
            return self._bridge.run(self._stream.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        self._bridge.run(self._stream.aclose())


class _ExecStream:
    """An async exec stream driven one step at a time from the test's thread."""

    def __init__(self, bridge: SyncOverAsync, stream: AsyncExecStream) -> None:
        self._bridge = bridge
        self._stream = stream
        self._chunks = stream.__aiter__()

    def write(self, data: bytes) -> None:
        self._bridge.run(self._stream.write(data))

    def close_stdin(self) -> None:
        self._bridge.run(self._stream.close_stdin())

    def __iter__(self) -> Iterator[ExecChunk]:
        while True:
            try:
                yield self._bridge.run(_anext(self._chunks))
            except StopAsyncIteration:
                return

    def wait(self, timeout: float | None = None) -> int:
        return self._bridge.run(self._stream.wait(timeout))

    def close(self) -> None:
        self._bridge.run(self._stream.aclose())

    def __enter__(self) -> _ExecStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def _anext(chunks: AsyncIterator[ExecChunk]) -> ExecChunk:
    return await chunks.__anext__()
