"""Copy a run's files out of its pod, from coroutines (see :mod:`.collect`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from podrunner.errors import BackendError
from podrunner.run.collect import (
    COLLECTOR_NAME,
    Collect,
    CollectedFiles,
    CollectProblem,
    files_of_exec,
    tar_argv,
)

if TYPE_CHECKING:
    from podrunner.run.aio_retry import AsyncRetryingBackend

__all__ = ["acollect_files"]


async def acollect_files(
    api: AsyncRetryingBackend, namespace: str, pod: str, collect: Collect
) -> CollectedFiles:
    """Copy the files out of the pod's collector container (async :func:`.collect_files`).

    The extraction (decoding, writing files) runs in a worker thread, off the event loop.

    Raises:
        CollectProblem: The collector cannot be reached, ``tar`` is missing or failed, or its
            stream is unreadable.
    """
    try:
        result = await api.exec(
            namespace, pod, COLLECTOR_NAME, tar_argv(collect), timeout=collect.timeout
        )
    except BackendError as exc:
        raise CollectProblem(f"could not exec tar in the collector container: {exc}") from None
    return await asyncio.to_thread(files_of_exec, result, collect)
