"""The async API loads only when used: ``import podrunner`` pays for none of it."""

from __future__ import annotations

import json
import subprocess
import sys


def loaded_after(code: str) -> list[str]:
    """Which of the heavy modules a fresh interpreter has loaded after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\n"
        "heavy = ('asyncio', 'aiohttp', 'httpx', 'kubernetes', 'kubernetes_asyncio')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out))


def test_import_podrunner_loads_no_async_transport() -> None:
    """``import podrunner`` (and the sync runner) load neither asyncio nor aiohttp."""
    assert loaded_after("import podrunner, podrunner.testing, podrunner.run") == []


def test_async_runner_on_the_fake_needs_no_transport() -> None:
    """AsyncPodRunner and the async fake load asyncio, not aiohttp nor kubernetes."""
    code = (
        "from podrunner import AsyncPodRunner\n"
        "from podrunner.testing import FakeCluster\n"
        "AsyncPodRunner(FakeCluster().async_backend)"
    )
    assert loaded_after(code) == ["asyncio"]
