"""Log collection: de-duplication across reconnects, UTF-8 safety, caps, timestamps."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from podrunner.sdk.logs import LogCollector, format_since_time, iter_lines, parse_timestamp


def stamp(i: int, text: str) -> bytes:
    return f"2026-11-27T10:00:{i // 3:02d}.{i % 3}00000001Z {text}\n".encode()


def test_parse_timestamp_nanoseconds_and_trimmed_zeros() -> None:
    """RFC3339Nano with trimmed zeros parses to exact integers."""
    assert parse_timestamp("2026-11-27T10:00:00.5Z") == (1795773600, 500_000_000)
    assert parse_timestamp("2026-11-27T10:00:00.000000001Z") == (1795773600, 1)
    assert parse_timestamp("2026-11-27T10:00:00Z") == (1795773600, 0)
    assert parse_timestamp("not a time") is None
    assert parse_timestamp("2026-11-27T10:00:00.1234567891Z") is None


def test_format_since_time_is_whole_seconds() -> None:
    """SinceTime is sent with second precision, as the API takes it."""
    assert format_since_time((1795773600, 999)) == "2026-11-27T10:00:00Z"


def test_resume_drops_duplicates_of_the_same_second() -> None:
    """A resumed stream that repeats the last second keeps each line exactly once."""
    log = LogCollector()
    first = b"".join(stamp(i, f"line {i}") for i in range(4))
    log.feed_all([first], complete=False)
    assert log.since_time == "2026-11-27T10:00:01Z"
    # The server resends everything from the start of second 1 (lines 3..), plus new ones.
    again = b"".join(stamp(i, f"line {i}") for i in range(3, 8))
    log.feed_all([again], complete=True)
    assert log.text == "".join(f"line {i}\n" for i in range(8))


def test_identical_timestamps_are_counted_not_collapsed() -> None:
    """Two different lines with one timestamp both survive a resume, once each."""
    log = LogCollector()
    ts = "2026-11-27T10:00:00.1Z"
    log.feed_all([f"{ts} a\n{ts} b\n".encode()], complete=False)
    log.feed_all([f"{ts} a\n{ts} b\n{ts} c\n".encode()], complete=True)
    assert log.text == "a\nb\nc\n"


def test_cut_mid_line_discards_partial_then_resumes_whole() -> None:
    """A stream cut mid-line loses nothing and doubles nothing after the resume."""
    log = LogCollector()
    full = stamp(0, "alpha") + stamp(1, "beta")
    log.feed_all([full[: len(stamp(0, "alpha")) + 10]], complete=False)
    log.feed_all([full], complete=True)
    assert log.text == "alpha\nbeta\n"


def test_utf8_split_across_chunks() -> None:
    """A multi-byte character split between chunks decodes intact."""
    data = stamp(0, "héllo ✓ 日本")
    for cut in range(1, len(data)):
        log = LogCollector()
        log.feed_all([data[:cut], data[cut:]], complete=True)
        assert log.text == "héllo ✓ 日本\n"


def test_unterminated_last_line_kept_only_when_complete() -> None:
    """Output without a final newline is kept at the real end, not after a drop."""
    log = LogCollector()
    log.feed_all([b"2026-11-27T10:00:00Z done"], complete=False)
    assert log.text == ""
    log.feed_all([b"2026-11-27T10:00:00Z done"], complete=True)
    assert log.text == "done"


def test_cap_keeps_the_tail() -> None:
    """Past the cap the oldest lines go and the result says it was truncated."""
    log = LogCollector(max_bytes=20)
    log.feed_all([b"".join(stamp(i, f"line-{i:02d}") for i in range(10))], complete=True)
    assert log.truncated
    assert log.text.endswith("line-09\n")
    assert len(log.text.encode()) <= 20
    assert log.dropped_bytes > 0


def test_listener_sees_each_line_once() -> None:
    """on_line receives every kept line once, across a resume."""
    seen: list[str] = []
    log = LogCollector(on_line=seen.append)
    log.feed_all([stamp(0, "a") + stamp(1, "b")], complete=False)
    log.feed_all([stamp(0, "a") + stamp(1, "b") + stamp(2, "c")], complete=True)
    assert seen == ["a", "b", "c"]


def test_iter_lines() -> None:
    """iter_lines splits bytes on newlines UTF-8-safely and keeps a trailing fragment."""
    assert list(iter_lines([b"a\n\xc3", b"\xa9\nz"])) == ["a", "é", "z"]


@given(
    lines=st.lists(
        st.text(
            alphabet=st.characters(exclude_characters="\n\r", exclude_categories=("Cs",)),
            max_size=20,
        ),
        max_size=30,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=5),
)
def test_any_sequence_of_cut_streams_reassembles_exactly(lines: list[str], cuts: list[int]) -> None:
    """However streams are cut and resumed, the output is exactly what was written, once."""
    full = b"".join(stamp(i, text) for i, text in enumerate(lines))
    log = LogCollector()
    for cut in sorted(cuts):
        # Each resumed stream restarts at the last whole second the collector kept.
        since = log.since_time
        start = 0
        if since is not None:
            for i in range(len(lines)):
                if stamp(i, "").decode()[:19] + "Z" >= since:
                    start = len(b"".join(stamp(j, lines[j]) for j in range(i)))
                    break
        log.feed_all([full[start : max(start, cut)]], complete=False)
    since = log.since_time
    start = 0
    if since is not None:
        for i in range(len(lines)):
            if stamp(i, "").decode()[:19] + "Z" >= since:
                start = len(b"".join(stamp(j, lines[j]) for j in range(i)))
                break
    log.feed_all([full[start:]], complete=True)
    assert log.text == "".join(f"{t}\n" for t in lines)


# -- lines that share one timestamp are handled as one piece ------------------------------------

_SHARED = st.lists(
    st.tuples(
        st.integers(0, 5),  # second
        st.lists(
            st.text(
                st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=6
            ),
            max_size=6,
        ),
    ),
    min_size=1,
    max_size=8,
)


def _stream(blocks: list[tuple[int, list[str]]]) -> tuple[bytes, list[str]]:
    """Encode blocks of lines sharing a stamp (stamps non-decreasing); return bytes and lines."""
    out, lines, second = b"", [], 0
    for step, texts in blocks:
        second += step
        ts = f"2026-11-27T10:00:{second:02d}.5Z "
        for text in texts:
            out += (ts + text + "\n").encode()
            lines.append(text)
    return out, lines


@given(_SHARED, st.data())
def test_shared_stamp_blocks_match_line_by_line(blocks: list[Any], data: st.DataObject) -> None:
    """Any chunking of a stream with shared stamps gives the lines a line-by-line read gives."""
    raw, lines = _stream(blocks)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=5)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    seen: list[str] = []
    log = LogCollector(on_line=seen.append)
    returned = log.feed_all(chunks, complete=True)
    assert returned == seen == lines
    assert log.text == "".join(line + "\n" for line in lines)
    assert log.line_count == len(lines)


@given(_SHARED, st.data())
def test_resume_inside_a_shared_stamp_block_is_exact(
    blocks: list[Any], data: st.DataObject
) -> None:
    """A stream cut anywhere and resumed from the whole second keeps each line once."""
    raw, lines = _stream(blocks)
    cut = data.draw(st.integers(0, len(raw)))
    log = LogCollector()
    log.feed_all([raw[:cut]], complete=False)
    since = log.since_time
    # The server resends every line stamped at or after the whole second asked for.
    again = b"".join(
        line + b"\n"
        for line in raw.split(b"\n")[:-1]
        if since is None or line[:19].decode() >= since[:19]
    )
    log.feed_all([again], complete=True)
    assert log.text == "".join(line + "\n" for line in lines)


def test_cap_drops_the_fewest_whole_lines_of_a_block() -> None:
    """With a cap, the oldest whole lines go, even from inside one multi-line piece."""
    ts = "2026-11-27T10:00:00.5Z "
    log = LogCollector(max_bytes=10)
    log.feed_all([f"{ts}aaaa\n{ts}bbbb\n{ts}cc\n{ts}dé\n".encode()], complete=True)
    assert log.text == "cc\ndé\n"
    assert log.truncated
    assert log.dropped_bytes == 10
    assert log.line_count == 4


# -- once past a resume's repeated lines, a stream is taken in bulk -----------------------------

_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=5
)
_ORDERED = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), _TEXT), min_size=1, max_size=30)


def _ordered_stream(steps: list[tuple[int, int, str]]) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Lines with non-decreasing stamps, some shared, as a kubelet writes them."""
    out, texts, second, tenth = [], [], 0, 0
    for new_second, new_tenth, text in steps:
        if new_second:
            second, tenth = second + new_second, new_tenth
        elif new_tenth:
            tenth = min(9, tenth + new_tenth)
        ts = f"2026-11-27T10:00:{second:02d}" + (f".{tenth}Z" if tenth else "Z")
        out.append((ts, f"{ts} {text}\n".encode()))
        texts.append(text)
    return out, texts


@given(_ORDERED, st.data())
def test_ordered_stream_any_chunking_and_resume_is_exact(
    steps: list[tuple[int, int, str]], data: st.DataObject
) -> None:
    """Cut anywhere, resumed from the whole second, chunked anyhow: each line exactly once."""
    lines, texts = _ordered_stream(steps)
    raw = b"".join(line for _, line in lines)
    seen: list[str] = []
    log = LogCollector(on_line=seen.append)
    cut = data.draw(st.integers(0, len(raw)))
    log.feed_all([raw[:cut]], complete=False)
    since = log.since_time
    again = b"".join(line for ts, line in lines if since is None or ts[:19] >= since[:19])
    points = sorted(data.draw(st.lists(st.integers(0, len(again)), max_size=4)))
    chunks = [again[a:b] for a, b in zip([0, *points], [*points, len(again)], strict=True)]
    log.feed_all(chunks, complete=True)
    assert log.text == "".join(text + "\n" for text in texts)
    assert seen == texts


def test_unstamped_lines_in_bulk_are_kept_as_they_are() -> None:
    """A line without a timestamp inside a stamped stream is kept whole, like the others."""
    log = LogCollector()
    log.feed_all([b"2026-11-27T10:00:00Z a\nplain line\n2026-11-27T10:00:01Z b\n"], complete=True)
    assert log.text == "a\nplain line\nb\n"
    assert log.since_time == "2026-11-27T10:00:01Z"
