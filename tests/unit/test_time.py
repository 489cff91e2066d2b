"""The one RFC 3339 module: every formatter and parser of times podrunner writes or reads."""

from __future__ import annotations

from podrunner._time import (
    epoch_of,
    format_rfc3339,
    format_rfc3339_nano,
    parse_rfc3339,
    parse_rfc3339_nano,
)

NEW_YEAR = 1_767_225_600  # 2026-01-01T00:00:00Z


def test_nano_trims_trailing_zeros_as_go_does() -> None:
    """RFC3339Nano drops trailing zeros of the fraction, and a zero fraction entirely."""
    assert format_rfc3339_nano(NEW_YEAR * 10**9 + 500_000_000) == "2026-01-01T00:00:00.5Z"
    assert format_rfc3339_nano(NEW_YEAR * 10**9 + 1) == "2026-01-01T00:00:00.000000001Z"
    assert format_rfc3339_nano(NEW_YEAR * 10**9) == "2026-01-01T00:00:00Z"


def test_nano_fixed_keeps_nine_digits() -> None:
    """The fixed form (CRI log files) always has nine fraction digits."""
    assert format_rfc3339_nano(NEW_YEAR * 10**9, fixed=True) == "2026-01-01T00:00:00.000000000Z"
    assert format_rfc3339_nano(NEW_YEAR * 10**9 + 5, fixed=True).endswith(".000000005Z")


def test_nano_round_trips_through_the_parser() -> None:
    """What the formatter writes, the parser reads back to the same nanosecond."""
    for stamp in (NEW_YEAR * 10**9, NEW_YEAR * 10**9 + 1, NEW_YEAR * 10**9 + 123_456_789):
        assert parse_rfc3339_nano(format_rfc3339_nano(stamp)) == stamp
        assert parse_rfc3339_nano(format_rfc3339_nano(stamp, fixed=True)) == stamp


def test_parse_nano_offsets_and_garbage() -> None:
    """Offsets are honoured; what is not a time is None, never an exception."""
    assert parse_rfc3339_nano("2026-01-01T01:00:00+01:00") == NEW_YEAR * 10**9
    assert parse_rfc3339_nano("2026-01-01T00:00:00.25Z") == NEW_YEAR * 10**9 + 250_000_000
    assert parse_rfc3339_nano("yesterday") is None
    assert parse_rfc3339_nano("2026-01-01T00:00:00") is None  # no zone


def test_whole_seconds_truncate_and_agree_with_the_parsers() -> None:
    """The seconds formatter truncates; its text parses back to the whole second."""
    text = format_rfc3339(NEW_YEAR + 0.999)
    assert text == "2026-01-01T00:00:00Z"
    assert parse_rfc3339(text) == (NEW_YEAR, 0)
    assert epoch_of(text) == NEW_YEAR
