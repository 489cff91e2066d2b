"""Copy a run's files out of its pod, from coroutines (see :mod:`.collect`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from podrunner.errors import BackendError
from podrunner.run.collect import (
    COLLECTOR_NAME,
    Collect,
    CollectedFiles,
    CollectProblem,
    container_words,
    files_of_stream,
    tar_argv,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine, Iterator

    from podrunner.backends.base import ExecChunk
    from podrunner.run.aio_retry import AsyncRetryingBackend

__all__ = ["acollect_files"]


async def acollect_files(
    api: AsyncRetryingBackend,
    namespace: str,
    pod: str,
    collect: Collect,
    container: str = COLLECTOR_NAME,
) -> CollectedFiles:
    """Copy the files out of the pod's collector container (async :func:`.collect_files`).

    The extraction (decoding, writing files) runs in a worker thread, off the event loop; it
    pulls the exec's output from the loop a chunk at a time, so the stream is never held whole.

    Raises:
        CollectProblem: The collector cannot be reached, ``tar`` is missing or failed, its
            stream is unreadable, or the copy broke or took longer than ``collect.timeout``.
    """
    try:
        stream = await api.open_exec(namespace, pod, container, tar_argv(collect))
    except BackendError as exc:
        raise CollectProblem(
            f"could not exec tar in the {container_words(container)}: {exc}"
        ) from None
    loop = asyncio.get_running_loop()

    def on_loop(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    output = stream.__aiter__()

    def chunks() -> Iterator[ExecChunk]:
        while (chunk := on_loop(_next_chunk(output))) is not None:
            yield chunk

    extraction = asyncio.ensure_future(
        asyncio.to_thread(
            files_of_stream, chunks(), lambda: on_loop(stream.wait()), collect, container
        )
    )
    # Its error once the stream was closed under it (a timeout, a cancelled run) is not news.
    extraction.add_done_callback(lambda done: done.cancelled() or done.exception())
    try:
        # shield: on a timeout the thread is not cancelled but ends when the stream closes.
        return await asyncio.wait_for(asyncio.shield(extraction), collect.timeout)
    except asyncio.TimeoutError:
        await stream.aclose()
        await asyncio.wait((extraction,))  # the thread sees the end of the stream and stops
        raise CollectProblem(f"the copy did not end within {collect.timeout}s") from None
    except BackendError as exc:
        raise CollectProblem(
            f"the copy from the {container_words(container)} broke: {exc}"
        ) from None
    finally:
        await stream.aclose()


async def _next_chunk(output: AsyncIterator[ExecChunk]) -> ExecChunk | None:
    try:
        return await output.__anext__()
    except StopAsyncIteration:
        return None
