"""Results out through the streamed exec: extracted as the tar stream arrives, sync and async."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from podrunner import AsyncPodRunner, Collect, CollectFailed, PodRunner, PodSpec, Volume
from podrunner.backends.fake.aio import AsyncFakeExec
from podrunner.backends.fake.execstream import spawn
from podrunner.run.aio_collect import acollect_files
from podrunner.run.collect import CollectProblem, collect_files
from podrunner.testing import FakeCluster

# Three files of 2 MB of random bytes, their digests printed for the check.
_SCRIPT = (
    'for i in 0 1 2; do head -c 2097152 /dev/urandom > "$0/f$i.bin"; done; '
    'cd "$0" && sha256sum f*.bin'
)
SPEC = PodSpec("busybox:1.36", ["sh", "-c", _SCRIPT, "/out"], volumes=[Volume.empty_dir("/out")])


def _expected(logs: str) -> dict[str, str]:
    return dict(line.split()[::-1] for line in logs.splitlines())


def _digests(files: Any) -> dict[str, str]:
    return {name: hashlib.sha256(files[name]).hexdigest() for name in files}


def test_a_local_run_streams_its_files_into_a_directory(tmp_path: Path) -> None:
    runner = PodRunner(FakeCluster(runtime="local").backend)
    collect = Collect(["/out/**"], directory=tmp_path / "r", max_bytes=None)
    result = runner.run(SPEC, timeout=120, collect=collect)
    runner.close()
    assert result.files is not None
    assert _digests(result.files) == _expected(result.logs)
    assert sorted(os.listdir(tmp_path / "r")) == ["f0.bin", "f1.bin", "f2.bin"]


def test_the_async_runner_streams_its_files_too() -> None:
    cluster = FakeCluster(runtime="local")

    async def main() -> Any:
        async with AsyncPodRunner(cluster.async_backend) as runner:
            return await runner.run(SPEC, timeout=120, collect=Collect(["/out/**"]))

    result = asyncio.run(main())
    cluster.backend.close()
    assert result.files is not None
    assert _digests(result.files) == _expected(result.logs)


def test_a_copy_cut_short_leaves_no_partial_files(tmp_path: Path) -> None:
    """The extraction writes while reading; a stream that ends early takes its files back."""
    cluster = FakeCluster()
    whole = _tar_of_one_file(b"x" * 100_000)
    cluster.when(image="python:*").succeed().exec_handler(lambda _: (0, whole[:60_000]))
    collect = Collect(["/out/**"], directory=tmp_path / "r")
    with pytest.raises(CollectFailed, match="cut short"):
        PodRunner(cluster.backend).run(PodSpec("python:3.12", ["true"]), collect=collect)
    assert not (tmp_path / "r").exists()


def _tar_of_one_file(data: bytes) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("./big.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _SleepingCollector:
    """A backend whose collector's ``tar`` never writes (a process that sleeps)."""

    def __init__(self) -> None:
        self.streams: list[Any] = []

    def open_exec(self, *args: Any, **kw: Any) -> Any:
        stream = spawn(["sleep", "30"], contextlib.nullcontext, stdin=False)
        self.streams.append(stream)
        return stream


class _AsyncSleepingCollector:
    """:class:`_SleepingCollector` for coroutines."""

    def __init__(self) -> None:
        self.sync = _SleepingCollector()

    async def open_exec(self, *args: Any, **kw: Any) -> Any:
        return AsyncFakeExec(self.sync.open_exec(), _in_thread)


async def _in_thread(fn: Any) -> Any:
    return await asyncio.to_thread(fn)


def test_a_copy_past_its_timeout_is_closed_and_says_so() -> None:
    api = _SleepingCollector()
    started = time.monotonic()
    with pytest.raises(CollectProblem, match=r"did not end within 0\.5s"):
        collect_files(api, "ns", "p", Collect(["/out/**"], timeout=0.5))  # type: ignore[arg-type]
    assert time.monotonic() - started < 10
    assert api.streams[0].process.poll() is not None  # the exec is ended, not left running


def test_an_async_copy_past_its_timeout_is_closed_and_says_so() -> None:
    api = _AsyncSleepingCollector()

    async def main() -> None:
        await acollect_files(api, "ns", "p", Collect(["/out/**"], timeout=0.5))  # type: ignore[arg-type]

    with pytest.raises(CollectProblem, match=r"did not end within 0\.5s"):
        asyncio.run(main())
    assert api.sync.streams[0].process.poll() is not None
