"""Container logs: one buffer per container instance, read like the kubelet serves them."""

from __future__ import annotations

__all__ = ["LogBuffer", "select_lines", "split_inside_utf8"]


class LogBuffer:
    r"""The log of one container instance: ``(timestamp_ns, line_bytes)`` pieces.

    Attributes:
        lines: Each piece is one line including its ``\\n`` (the last may lack it).
        closed: The instance terminated; followers stop after the last line.
    """

    __slots__ = ("closed", "lines")

    def __init__(self) -> None:
        self.lines: list[tuple[int, bytes]] = []
        self.closed = False

    def write(self, stamp_ns: int, data: bytes) -> None:
        """Append ``data`` split into lines, each stamped later than the previous one."""
        if not data:
            return
        lines = self.lines
        # Distinct, increasing stamps keep sinceTime and de-duplication by timestamp exact.
        if lines and stamp_ns <= lines[-1][0]:
            stamp_ns = lines[-1][0] + 1
        if lines and not lines[-1][1].endswith(b"\n"):
            # A partial line is completed by the next write, as a container runtime would.
            stamp, head = lines.pop()
            data = head + data
            stamp_ns = stamp
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end + 1
            lines.append((stamp_ns, data[start:end]))
            stamp_ns += 1
            start = end

    def text(self) -> str:
        """Return the whole log as text."""
        return b"".join(line for _, line in self.lines).decode("utf-8", "replace")


def select_lines(
    lines: list[tuple[int, bytes]], since_ns: int | None, tail_lines: int | None
) -> int:
    """Return the index of the first line to send given ``sinceTime`` and ``tailLines``."""
    start = 0
    if since_ns is not None:
        while start < len(lines) and lines[start][0] < since_ns:
            start += 1
    if tail_lines is not None:
        start = max(start, len(lines) - max(tail_lines, 0))
    return start


def split_inside_utf8(chunk: bytes) -> list[bytes]:
    """Split a chunk in the middle of its first multi-byte character (or in half)."""
    for i in range(1, len(chunk)):
        if 0x80 <= chunk[i] <= 0xBF:
            return [chunk[:i], chunk[i:]]
    if len(chunk) > 1:
        half = len(chunk) // 2
        return [chunk[:half], chunk[half:]]
    return [chunk]
