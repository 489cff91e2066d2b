"""Tests for podrunner.manifest.naming: pod names, label values, run ids."""

from __future__ import annotations

import re
import threading

from hypothesis import given
from hypothesis import strategies as st

from podrunner.manifest.naming import generate_pod_name, new_run_id, sanitize_label_value

# Independent of podrunner._validation on purpose: the grammars written out again.
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def is_dns_label(name: str) -> bool:
    return len(name) <= 63 and DNS1123_LABEL.fullmatch(name) is not None


def test_generate_pod_name_has_prefix() -> None:
    """Seed: the name starts with the prefix and a dash, and has more after it."""
    name = generate_pod_name("claude-code")
    assert name.startswith("claude-code-")
    assert len(name) > len("claude-code-")


def test_generate_pod_name_unique_same_millisecond() -> None:
    """Seed: two calls in a row (the same millisecond) give different names."""
    names = [generate_pod_name("test") for _ in range(1000)]
    assert len(set(names)) == len(names)


def test_generate_pod_name_unique_across_threads() -> None:
    """Names made concurrently by many threads never collide."""
    results: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [generate_pod_name("test") for _ in range(500)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4000
    assert len(set(results)) == 4000


def test_generate_pod_name_sanitises_odd_prefixes() -> None:
    """Odd prefixes are lower-cased and cleaned; an empty result becomes 'pod'."""
    assert generate_pod_name("Claude Code!").startswith("claude-code-")
    assert generate_pod_name("").startswith("pod-")
    assert generate_pod_name("---").startswith("pod-")
    assert generate_pod_name("ÄÖÜ").startswith("pod-")
    long = generate_pod_name("x" * 200)
    assert len(long) <= 63
    assert is_dns_label(long)


@given(st.text())
def test_generate_pod_name_always_valid(prefix: str) -> None:
    """Any prefix gives a DNS-1123 label of at most 63 characters."""
    assert is_dns_label(generate_pod_name(prefix))


@given(st.text())
def test_sanitize_label_value_always_valid(value: str) -> None:
    """Any string becomes a valid label value."""
    out = sanitize_label_value(value)
    assert len(out) <= 63
    assert LABEL_VALUE.fullmatch(out)


def test_sanitize_label_value_keeps_valid_and_separates_invalid() -> None:
    """Valid values pass unchanged; altered ones get a hash so they stay distinct."""
    assert sanitize_label_value("my_value-1.0") == "my_value-1.0"
    assert sanitize_label_value("") == ""
    a = sanitize_label_value("feature/x")
    b = sanitize_label_value("feature:x")
    assert a != b
    assert a.startswith("feature-x-")
    assert sanitize_label_value("feature/x") == a


def test_new_run_id() -> None:
    """Run ids are 16 hex digits, valid label values, and unique."""
    ids = {new_run_id() for _ in range(1000)}
    assert len(ids) == 1000
    for run_id in ids:
        assert re.fullmatch(r"[0-9a-f]{16}", run_id)
