"""Container log collection: timestamps, resume without duplicates, UTF-8 safety, a size cap.

Logs are read with ``timestamps=true`` so every line carries the time the kubelet recorded it.
That is what makes a resumed stream exact: after a dropped connection the follower asks again
``sinceTime`` the last second it saw (the API only takes whole seconds) and drops every line at
or before the last timestamp it already kept, counting lines that share one timestamp. Lines are
split on bytes before decoding, so a multi-byte character cut across chunks is never mangled
(a newline byte cannot occur inside a UTF-8 sequence).
"""

from __future__ import annotations

import collections
import re
from collections.abc import Callable, Iterable, Iterator

from podrunner._time import format_rfc3339, parse_rfc3339

__all__ = ["LogCollector", "LogLine", "iter_lines"]

LogLine = tuple[tuple[int, int], str]
"""A parsed line: ((epoch seconds, nanoseconds), text without the trailing newline)."""

# A kubelet's timestamp and its space at the start of a line (RFC 3339, as the API sends it).
_STAMP = re.compile(
    rb"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    rb"(?:[Zz]|[+-][0-9]{2}:[0-9]{2}) ",
    re.MULTILINE,
)


class LogCollector:
    """Accumulates a container's timestamped log across reconnects.

    Feed it the raw byte chunks of each stream with :meth:`feed`, call :meth:`end_stream` when a
    stream ends (cleanly or not), and read :attr:`text` at the end.

    Args:
        max_bytes: Keep at most this many bytes of output; when exceeded the oldest lines are
            dropped (the tail is what explains a failure) and :attr:`truncated` is set.
            ``None`` keeps everything.
        on_line: Called with each new line (without its newline) as soon as it is complete.
    """

    def __init__(
        self,
        *,
        max_bytes: int | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self._max = max_bytes
        self._listeners: list[Callable[[str], None]] = [on_line] if on_line else []
        self._lines: collections.deque[str] = collections.deque()
        self._size = 0
        self._buf = b""
        self._last: tuple[int, int] | None = None
        self._seen_at_last = 0  # lines kept whose timestamp equals self._last
        self._skip_at_last = 0  # lines at self._last still to skip in the current stream
        # The newest stamp kept before the current stream began; once a line newer than it is
        # kept, the rest of the stream is new output (a log is in time order).
        self._floor: tuple[int, int] | None = None
        self._fresh = True
        self.truncated = False
        """Whether lines were dropped to respect ``max_bytes``."""
        self.dropped_bytes = 0
        """How many bytes of output were dropped."""
        self.line_count = 0
        """How many lines were kept in total (including dropped ones)."""

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Also call ``listener`` with each new line."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[str], None]) -> None:
        """Stop calling ``listener``."""
        # A new list: a thread feeding lines meanwhile goes on with the one it has.
        self._listeners = [known for known in self._listeners if known != listener]

    @property
    def last_timestamp(self) -> tuple[int, int] | None:
        """Timestamp of the newest line kept, if any."""
        return self._last

    @property
    def since_time(self) -> str | None:
        """The ``sinceTime`` to resume from, or ``None`` to read from the start."""
        return None if self._last is None else format_rfc3339(self._last[0])

    @property
    def text(self) -> str:
        """The output kept so far."""
        return "".join(self._lines)

    def begin_stream(self) -> None:
        """Prepare for a new stream that restarts at :attr:`since_time`."""
        self._buf = b""
        self._skip_at_last = self._seen_at_last
        self._floor = self._last
        self._fresh = self._last is None

    def feed(self, chunk: bytes) -> list[str]:
        """Add a chunk; return the new complete lines (without newlines)."""
        data = self._buf + chunk if self._buf else chunk
        cut = data.rfind(b"\n") + 1
        self._buf = data[cut:]
        if not cut:
            return []
        block = data[:cut]
        shared = self._accept_shared(block)
        if shared is not None:
            return shared
        out: list[str] = []
        pos = 0
        while pos < len(block):
            if self._fresh:
                # Past the lines a resumed stream repeats: the rest goes in one piece.
                bulk = self._accept_fresh(block[pos:])
                if bulk is not None:
                    out.extend(bulk)
                    return out
                for raw in block[pos:-1].split(b"\n"):
                    line = self._accept(raw, newline=True)
                    if line is not None:
                        out.append(line)
                return out
            end = block.index(b"\n", pos)
            line = self._accept(block[pos:end], newline=True)
            if line is not None:
                out.append(line)
            pos = end + 1
        return out

    def _accept_fresh(self, block: bytes) -> list[str] | None:
        """Keep every line of ``block`` (all new output); ``None`` if a line has no timestamp.

        The timestamps are stripped in one pass; only the last line's is parsed, with the
        count of lines that end the block with the same one, which is all that a resume from
        :attr:`since_time` needs.
        """
        count = block.count(b"\n")
        body, stamped = _STAMP.subn(b"", block)
        if stamped != count:
            return None
        start = block.rfind(b"\n", 0, len(block) - 1) + 1
        token = block[start : block.index(b" ", start) + 1]
        ts = parse_rfc3339(token[:-1].decode("ascii"))
        if ts is None:
            return None
        if block.startswith(token) and block.count(b"\n" + token) == count - 1:
            same = count  # one stamp for the whole block: a server that stamps writes
        else:
            same, end = 1, start
            while end > 0:
                prev = block.rfind(b"\n", 0, end - 1) + 1
                if not block.startswith(token, prev):
                    break
                same, end = same + 1, prev
        if same == count and ts == self._last:
            same += self._seen_at_last
        self._last, self._seen_at_last, self._skip_at_last = ts, same, 0
        text = body.decode("utf-8", "replace")
        lines = text[:-1].split("\n")
        self._store(text, len(lines))
        for listener in self._listeners:
            for line in lines:
                listener(line)
        return lines

    def _accept_shared(self, block: bytes) -> list[str] | None:
        """Keep the lines of ``block`` if they all share one timestamp, else return ``None``.

        A server that stamps a whole write once (the fake does; a kubelet may) sends many lines
        with one timestamp: they are handled as one piece of text, not line by line.
        """
        space = block.find(b" ", 0, 64)
        if space < 20:
            return None
        prefix = block[: space + 1]
        if b"\n" in prefix:
            return None
        # One pass over the stamped block; each replacement is a line with this same stamp.
        body = block[len(prefix) :].replace(b"\n" + prefix, b"\n")
        count = body.count(b"\n")
        if len(block) - len(prefix) - len(body) != (count - 1) * len(prefix):
            return None
        ts = parse_rfc3339(prefix[:-1].decode("ascii", "replace"))
        if ts is None:
            return None
        skip = 0
        if self._last is not None and ts < self._last:
            return []
        if self._floor is None or ts > self._floor:
            self._fresh = True
        if self._last is not None and ts == self._last:
            skip = min(self._skip_at_last, count)
            self._skip_at_last -= skip
            self._seen_at_last += count - skip
        else:
            self._last, self._seen_at_last, self._skip_at_last = ts, count, 0
        if skip == count:
            return []
        if skip:
            body = body.split(b"\n", skip)[skip]
        # A newline byte never occurs inside a UTF-8 sequence: decoding the lines together
        # gives the same text as decoding them one by one.
        text = body.decode("utf-8", "replace")
        lines = text[:-1].split("\n")
        self._store(text, len(lines))
        for listener in self._listeners:
            for line in lines:
                listener(line)
        return lines

    def end_stream(self, *, complete: bool) -> list[str]:
        """Finish the current stream.

        Args:
            complete: The stream ended because the log is over (a non-follow read or a follow
                of a terminated container). Its unterminated last line is then real output
                and is kept; after a dropped connection it is discarded, since the resumed
                stream sends it again whole.

        Returns:
            The new lines this produced.
        """
        raw, self._buf = self._buf, b""
        if complete and raw:
            line = self._accept(raw, newline=False)
            return [line] if line is not None else []
        return []

    def feed_all(self, chunks: Iterable[bytes], *, complete: bool) -> list[str]:
        """Feed a whole stream: :meth:`begin_stream`, every chunk, :meth:`end_stream`."""
        self.begin_stream()
        out: list[str] = []
        for chunk in chunks:
            out.extend(self.feed(chunk))
        out.extend(self.end_stream(complete=complete))
        return out

    def _accept(self, raw: bytes, *, newline: bool) -> str | None:
        head, sep, rest = raw.partition(b" ")
        ts = parse_rfc3339(head.decode("ascii", "replace")) if sep else None
        if ts is None:
            # No timestamp: a backend that does not stamp lines. Keep it as it is.
            body = raw
        else:
            body = rest
            if self._floor is None or ts > self._floor:
                self._fresh = True
            if self._last is not None:
                if ts < self._last:
                    return None
                if ts == self._last:
                    if self._skip_at_last > 0:
                        self._skip_at_last -= 1
                        return None
                    self._seen_at_last += 1
                else:
                    self._last, self._seen_at_last, self._skip_at_last = ts, 1, 0
            else:
                self._last, self._seen_at_last, self._skip_at_last = ts, 1, 0
        text = body.decode("utf-8", "replace")
        self._store(text + "\n" if newline else text, 1)
        for listener in self._listeners:
            listener(text)
        return text

    def _store(self, text: str, lines: int) -> None:
        """Keep ``text`` (``lines`` lines); drop the oldest whole lines over ``max_bytes``."""
        self.line_count += lines
        self._lines.append(text)
        # isascii() is O(1) on str: most text needs no encoding to know its size.
        self._size += len(text) if text.isascii() else len(text.encode("utf-8"))
        if self._max is None:
            return
        excess = self._size - self._max
        while excess > 0 and self._lines:
            first = self._lines[0]
            raw = first.encode("utf-8") if not first.isascii() else None
            size = len(first) if raw is None else len(raw)
            if size <= excess:
                self._lines.popleft()
                dropped = size
            else:
                # Drop the fewest whole lines of this piece that cover the excess.
                if raw is None:
                    end = first.find("\n", excess - 1)
                    dropped = size if end < 0 else end + 1
                    rest = first[dropped:]
                else:
                    end = raw.find(b"\n", excess - 1)
                    dropped = size if end < 0 else end + 1
                    rest = raw[dropped:].decode("utf-8")
                if rest:
                    self._lines[0] = rest
                else:
                    self._lines.popleft()
            self._size -= dropped
            self.dropped_bytes += dropped
            self.truncated = True
            excess -= dropped


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Split a byte stream into decoded lines, UTF-8-safely across chunk boundaries."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        *complete, buf = buf.split(b"\n")
        for raw in complete:
            yield raw.decode("utf-8", "replace")
    if buf:
        yield buf.decode("utf-8", "replace")
