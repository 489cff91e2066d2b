"""Closing the async Kubernetes backend closes every connection it opened, on a real server.

A write the server refuses before reading it all (413 for a body over 3 MiB) leaves a TLS
connection with unsent bytes that the server stops reading; before CPython 3.12.8 such a
transport stays "closing" until the loop ends and is then collected unclosed, which a user sees
as a ResourceWarning and a leaked socket (CI's kwok tier failed once on exactly this).
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

from podrunner.backends.kubernetes.aio import AsyncKubernetesBackend
from podrunner.backends.kubernetes.config import ClusterConfig
from podrunner.errors import BackendError


def _big_config_map(namespace: str, size: int) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big", "namespace": namespace},
        "data": {"blob": "x" * size},
    }


async def _refused_upload_then_close(config: ClusterConfig, namespace: str) -> int:
    backend = AsyncKubernetesBackend(config)
    try:
        with pytest.raises(BackendError) as info:
            await backend.create(_big_config_map(namespace, 8_000_000), dry_run=True)
        return info.value.status or 0
    finally:
        await backend.close()


def test_close_after_a_refused_large_upload_leaves_no_connection_open(
    kubeconfig: Path, namespace: str
) -> None:
    config = ClusterConfig.from_kubeconfig_file(kubeconfig)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        # asyncio.run ends its loop as soon as the coroutine returns: nothing gets extra time.
        statuses = [asyncio.run(_refused_upload_then_close(config, namespace)) for _ in range(5)]
        gc.collect()
    assert statuses == [413] * 5
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaked == [], "\n".join(leaked)
