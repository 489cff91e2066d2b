"""Container logs: one buffer per container instance, read like the kubelet serves them."""

from __future__ import annotations

import bisect

__all__ = ["LogBuffer", "Position", "split_inside_utf8"]

Position = tuple[int, int]
"""Where a reader is in a :class:`LogBuffer`: (block index, byte offset in that block)."""


class LogBuffer:
    r"""The log of one container instance, in blocks of lines that share one timestamp.

    Each write is one block stamped once: a real kubelet also gives lines read together close
    or equal timestamps, and the log follower counts lines that share one. Storing blocks, not
    lines, keeps a 15 MB log at about 15 MB, and lets readers send a block in one piece.
    Stamps never decrease; every block but the last ends with ``\n``.

    Attributes:
        blocks: The log's bytes, block by block.
        stamps: Each block's timestamp (nanoseconds since the epoch).
        closed: The instance terminated; followers stop after the last line.
    """

    __slots__ = ("blocks", "closed", "stamps")

    def __init__(self) -> None:
        self.blocks: list[bytes] = []
        self.stamps: list[int] = []
        self.closed = False

    def write(self, stamp_ns: int, data: bytes) -> None:
        """Append ``data`` as one block, stamped later than the previous one."""
        if not data:
            return
        blocks, stamps = self.blocks, self.stamps
        if stamps and stamp_ns <= stamps[-1]:
            stamp_ns = stamps[-1] + 1
        if blocks and not blocks[-1].endswith(b"\n"):
            # A partial line is completed by the next write, as a container runtime would,
            # and keeps its own stamp; the complete lines before it stay where readers saw them.
            last = blocks[-1]
            cut = last.rfind(b"\n") + 1
            stamp_ns = stamps[-1]
            data = last[cut:] + data
            if cut:
                blocks[-1] = last[:cut]
            else:
                blocks.pop()
                stamps.pop()
        blocks.append(data)
        stamps.append(stamp_ns)

    def clear(self) -> None:
        """Forget the whole log (readers start again from the beginning)."""
        self.blocks.clear()
        self.stamps.clear()

    def text(self) -> str:
        """Return the whole log as text."""
        return b"".join(self.blocks).decode("utf-8", "replace")

    def end(self) -> Position:
        """The position after the last byte."""
        blocks = self.blocks
        return (len(blocks) - 1, len(blocks[-1])) if blocks else (0, 0)

    def complete_end(self) -> Position:
        """The position after the last complete line (a partial last line is held back)."""
        blocks = self.blocks
        if not blocks:
            return (0, 0)
        last = blocks[-1]
        if last.endswith(b"\n"):
            return (len(blocks) - 1, len(last))
        return (len(blocks) - 1, last.rfind(b"\n") + 1)

    def start(self, since_ns: int | None, tail_lines: int | None) -> Position:
        """Return where to start sending given ``sinceTime`` and ``tailLines``."""
        pos: Position = (0, 0)
        if since_ns is not None:
            pos = (bisect.bisect_left(self.stamps, since_ns), 0)
        if tail_lines is not None:
            pos = max(pos, self._tail(max(tail_lines, 0)))
        return pos

    def _tail(self, wanted: int) -> Position:
        if wanted == 0:
            return self.end()
        for index in range(len(self.blocks) - 1, -1, -1):
            block = self.blocks[index]
            lines = block.split(b"\n")
            if block.endswith(b"\n"):
                lines.pop()
            if len(lines) >= wanted:
                skip = len(lines) - wanted
                return (index, sum(len(line) + 1 for line in lines[:skip]))
            wanted -= len(lines)
        return (0, 0)

    def read(self, pos: Position, *, whole_lines: bool) -> tuple[list[tuple[int, bytes]], Position]:
        """Return the ``(stamp, bytes)`` pieces from ``pos`` on, and the position after them.

        Args:
            pos: Where the reader is.
            whole_lines: Hold back a partial last line (a follower waits for its end).
        """
        end = self.complete_end() if whole_lines else self.end()
        index, offset = pos
        pieces: list[tuple[int, bytes]] = []
        while (index, offset) < end:
            block = self.blocks[index]
            stop = end[1] if index == end[0] else len(block)
            if stop > offset:
                pieces.append(
                    (
                        self.stamps[index],
                        block[offset:stop] if offset or stop < len(block) else block,
                    )
                )
            if index == end[0]:
                offset = stop
                break
            index, offset = index + 1, 0
        return pieces, (index, offset)

    def has_more(self, pos: Position) -> bool:
        """Whether complete lines after ``pos`` are waiting, or the log is closed."""
        return self.closed or self.complete_end() > pos


def split_inside_utf8(chunk: bytes) -> list[bytes]:
    """Split a chunk in the middle of its first multi-byte character (or in half)."""
    for i in range(1, len(chunk)):
        if 0x80 <= chunk[i] <= 0xBF:
            return [chunk[:i], chunk[i:]]
    if len(chunk) > 1:
        half = len(chunk) // 2
        return [chunk[:half], chunk[half:]]
    return [chunk]
