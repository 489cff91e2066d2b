"""RFC 3339 times as the Kubernetes API writes them: the one formatter and parser podrunner uses."""

from __future__ import annotations

import datetime as dt
import math
import time

__all__ = [
    "epoch_of",
    "format_rfc3339",
    "format_rfc3339_nano",
    "parse_rfc3339",
    "parse_rfc3339_nano",
]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_DIGITS = "0123456789"


def format_rfc3339(epoch: float) -> str:
    """Format seconds since the epoch as ``YYYY-MM-DDTHH:MM:SSZ`` (whole seconds, UTC).

    The fraction is dropped (truncated, never rounded up into the next second), which is what
    ``sinceTime`` and the expiry annotation need.
    """
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.floor(epoch)))


def format_rfc3339_nano(epoch_ns: int, *, fixed: bool = False) -> str:
    """Format nanoseconds since the epoch as Go's RFC3339Nano (``2026-01-01T00:00:00.5Z``).

    Trailing zeros of the fraction are trimmed, and a zero fraction dropped, as the kubelet
    writes log timestamps. ``fixed`` keeps all nine digits, as container runtimes write the
    lines of CRI log files.
    """
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if fixed:
        return f"{base}.{nanos:09d}Z"
    if nanos:
        return f"{base}.{nanos:09d}".rstrip("0") + "Z"
    return base + "Z"


def parse_rfc3339(text: str) -> tuple[int, int] | None:
    """Parse an RFC 3339 time with up to nanosecond precision.

    The kubelet writes RFC3339Nano, which trims trailing zeros, so times are compared as
    integers, never as strings.

    Returns:
        ``(seconds since the epoch, nanoseconds)``, or ``None`` if ``text`` is not a time.
    """
    if len(text) < 20 or text[4] != "-" or text[10] != "T":
        return None
    base, frac = text[:19], text[19:]
    nanos = 0
    if frac.startswith("."):
        rest = frac[1:].lstrip(_DIGITS)  # the zone after the fraction's digits
        digits = frac[1 : len(frac) - len(rest)]
        if not digits or len(digits) > 9:
            return None
        nanos = int(digits.ljust(9, "0"))
        frac = rest
    try:
        when = dt.datetime.fromisoformat(base + ("+00:00" if frac in ("Z", "z") else frac))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return int((when - _EPOCH).total_seconds()), nanos


def parse_rfc3339_nano(text: str) -> int | None:
    """Parse an RFC 3339 time into nanoseconds since the epoch; ``None`` if it is not one."""
    parsed = parse_rfc3339(text)
    return None if parsed is None else parsed[0] * 1_000_000_000 + parsed[1]


def epoch_of(text: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time; ``None`` for a missing or bad one."""
    if not text:
        return None
    parsed = parse_rfc3339(text)
    return None if parsed is None else parsed[0] + parsed[1] / 1e9
