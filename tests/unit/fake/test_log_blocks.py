"""The fake's container log is kept in blocks: exact reads, and memory close to the output."""

from __future__ import annotations

import shutil
import tracemalloc

import pytest

from podrunner import CleanupPolicy, PodRunner, PodSpec
from podrunner.backends.fake import FakeCluster
from podrunner.backends.fake.logs import LogBuffer


def _read(buffer: LogBuffer, pos: tuple[int, int], *, whole: bool) -> tuple[bytes, tuple[int, int]]:
    pieces, end = buffer.read(pos, whole_lines=whole)
    return b"".join(data for _, data in pieces), end


def test_partial_line_is_held_back_then_completed_in_order() -> None:
    """A follower never sees half a line; the completed line keeps its place and stamp."""
    buffer = LogBuffer()
    buffer.write(100, b"one\ntw")
    got, pos = _read(buffer, (0, 0), whole=True)
    assert got == b"one\n"
    assert not buffer.has_more(pos)
    buffer.write(50, b"o\nthree\n")  # an earlier clock reading never goes back in time
    got, pos = _read(buffer, pos, whole=True)
    assert got == b"two\nthree\n"
    assert buffer.stamps == sorted(buffer.stamps)
    assert buffer.text() == "one\ntwo\nthree\n"


@pytest.mark.parametrize("tail", [0, 1, 2, 3, 5, 9])
def test_tail_lines_across_blocks(tail: int) -> None:
    """The tailLines parameter counts lines, not blocks (an unterminated last line counts)."""
    buffer = LogBuffer()
    for stamp, data in enumerate([b"a\nb\n", b"c\n", b"d\ne\nf"]):
        buffer.write(stamp + 1, data)
    lines = [b"a\n", b"b\n", b"c\n", b"d\n", b"e\n", b"f"]
    got, _ = _read(buffer, buffer.start(None, tail), whole=False)
    assert got == b"".join(lines[max(0, len(lines) - tail) :] if tail else [])


def test_since_time_selects_whole_blocks() -> None:
    """A sinceTime starts at the first block stamped at or after it."""
    buffer = LogBuffer()
    buffer.write(10, b"a\nb\n")
    buffer.write(20, b"c\n")
    assert _read(buffer, buffer.start(11, None), whole=False)[0] == b"c\n"
    assert _read(buffer, buffer.start(10, None), whole=False)[0] == b"a\nb\nc\n"


def test_stamped_read_through_the_backend() -> None:
    """Every line of a block carries the block's timestamp on the wire."""
    cluster = FakeCluster()
    cluster.when(image="x:*").succeed(logs="a\nb\n")
    runner = PodRunner(cluster.backend)
    result = runner.run(PodSpec(image="x:1", command=["sh"]), cleanup=CleanupPolicy.NEVER)
    raw = b"".join(cluster.backend.read_log("default", result.pod_name, timestamps=True)).decode()
    first, second = raw.splitlines()
    assert first.endswith(" a")
    assert second.endswith(" b")
    assert first.split(" ")[0] == second.split(" ")[0]
    runner.close()


@pytest.mark.skipif(shutil.which("seq") is None, reason="needs seq")
def test_large_output_memory_stays_close_to_its_size() -> None:
    """200,000 lines (1.3 MB) through the local runtime and the runner: memory of a few copies.

    Stored a line at a time, the same output took over 30 MB (a tuple, an int and a bytes
    object per line in the fake, a str per line in the collector).
    """
    cluster = FakeCluster(runtime="local")
    runner = PodRunner(cluster.backend)
    expected = "".join(f"{i}\n" for i in range(1, 200_001))
    tracemalloc.start()
    try:
        result = runner.run(PodSpec(image="x", command=["seq", "200000"]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        runner.close()
        cluster.backend.close()
    assert result.logs == expected
    assert peak < 8 * len(expected)
