"""Names and label values: pod names that never collide, label values the API server accepts.

Pod names are generated client-side (never with ``generateName``): a create retried after an
ambiguous failure (a timeout after the server stored the object) then targets the same name, and
the run-id label tells the runner the pod it finds is its own.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import re
import threading
import time

from podrunner._validation import LABEL_VALUE_MAX_LENGTH, label_value_error

__all__ = ["generate_pod_name", "new_run_id", "sanitize_label_value"]

_MAX_NAME = 63
_FALLBACK_PREFIX = "pod"
# "-" + 11 hex digits of a millisecond timestamp (enough until the year 10889) + "-" + 4 hex
# digits of a per-process counter + 8 random hex digits.
_SUFFIX_LEN = 1 + 11 + 1 + 4 + 8
_MAX_PREFIX = _MAX_NAME - _SUFFIX_LEN

_counter = itertools.count()
_counter_lock = threading.Lock()
_INVALID_NAME_CHARS = re.compile(r"[^a-z0-9-]+")
_INVALID_LABEL_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_HYPHENS = re.compile(r"-{2,}")


@functools.lru_cache(maxsize=256)  # a pure function of the prefix, asked once per run
def _sanitize_prefix(prefix: str) -> str:
    cleaned = _INVALID_NAME_CHARS.sub("-", prefix.lower())
    cleaned = _HYPHENS.sub("-", cleaned).strip("-")
    # Trim after truncating too: a cut can leave a trailing "-" before the suffix's own "-".
    cleaned = cleaned[:_MAX_PREFIX].rstrip("-")
    return cleaned or _FALLBACK_PREFIX


def generate_pod_name(prefix: str = "podrunner") -> str:
    """Return a new pod name, ``<prefix>-<ms timestamp hex>-<counter hex><random hex>``.

    Unique across threads within one millisecond (the per-process counter differs) and across
    processes (32 random bits), and always a valid DNS-1123 label of at most 63 characters.
    The prefix is sanitised rather than rejected: lower-cased, runs of characters outside
    ``[a-z0-9-]`` become one ``-``, edges trimmed, cut to 38 characters; an empty result
    becomes ``"pod"``.

    Args:
        prefix: Human-readable start of the name, e.g. ``"claude-code"``.

    Returns:
        The name.

    Example:
        >>> generate_pod_name("Claude Code!").startswith("claude-code-")
        True
    """
    with _counter_lock:
        count = next(_counter) & 0xFFFF
    millis = time.time_ns() // 1_000_000
    # os.urandom(4).hex() is exactly f"{secrets.randbits(32):08x}", at half the cost.
    return f"{_sanitize_prefix(prefix)}-{millis:011x}-{count:04x}{os.urandom(4).hex()}"


def sanitize_label_value(value: str) -> str:
    """Turn any string into a valid label value, deterministically.

    A value that is already valid is returned unchanged. Otherwise characters outside
    ``[A-Za-z0-9_.-]`` become ``-``, the edges are trimmed to alphanumerics, and a ``-`` plus
    8 hex digits of the original's SHA-256 is appended, so two different inputs never end up
    with the same label (the result is at most 63 characters).

    Args:
        value: Any string, e.g. a task title or a branch name.

    Returns:
        A valid label value.
    """
    if label_value_error(value) is None:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    cleaned = _INVALID_LABEL_CHARS.sub("-", value)
    cleaned = cleaned[: LABEL_VALUE_MAX_LENGTH - len(digest) - 1]
    cleaned = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)
    return f"{cleaned}-{digest}" if cleaned else digest


def new_run_id() -> str:
    """Return a new run id: 16 random hex digits, a valid label value.

    Returns:
        The id, e.g. ``"3f9c0a7be21d4c55"``.
    """
    return os.urandom(8).hex()  # what secrets.token_hex(8) returns, one call away
