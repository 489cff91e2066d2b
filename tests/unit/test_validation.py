"""Tests for podrunner._validation: the API server's rules and messages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from podrunner import _validation as v

LABEL_REGEX_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


@pytest.mark.parametrize("value", ["a", "abc", "a-b", "0", "1a", "a" * 63, "123-abc"])
def test_dns1123_label_accepts_valid(value: str) -> None:
    """Valid DNS-1123 labels give no error."""
    assert v.dns1123_label_error(value) is None


@pytest.mark.parametrize("value", ["", "-a", "a-", "A", "a_b", "a b", "é", "a\n"])
def test_dns1123_label_rejects_with_server_message(value: str) -> None:
    """Invalid labels get the API server's regex message, verbatim (double space included)."""
    assert v.dns1123_label_error(value) == LABEL_REGEX_MSG


def test_dns1123_label_dots_and_length() -> None:
    """A dotted subdomain is reported as dots; a long label as too long."""
    assert v.dns1123_label_error("a.b") == "must not contain dots"
    assert v.dns1123_label_error("a" * 64) == "must be no more than 63 characters"


def test_dns1123_subdomain() -> None:
    """Subdomains allow dots, up to 253 characters."""
    assert v.dns1123_subdomain_error("example.com") is None
    assert v.dns1123_subdomain_error("a" * 253) is None
    assert v.dns1123_subdomain_error("a" * 254) == "must be no more than 253 characters"
    err = v.dns1123_subdomain_error("Example.com")
    assert err is not None
    assert err.startswith("a lowercase RFC 1123 subdomain must consist of")
    assert "(e.g. 'example.com', regex used for validation is" in err


@pytest.mark.parametrize(
    "key", ["app", "app.kubernetes.io/name", "MyName", "my.name", "a_b", "x/" + "a" * 63]
)
def test_label_key_accepts_valid(key: str) -> None:
    """Qualified names with or without a DNS prefix are valid label keys."""
    assert v.label_key_error(key) is None


def test_label_key_errors() -> None:
    """Each malformed part of a key is named as the server names it."""
    assert v.label_key_error("/a") == "prefix part must be non-empty"
    assert v.label_key_error("a/") is not None
    assert str(v.label_key_error("a/")).startswith("name part must be non-empty")
    assert str(v.label_key_error("Foo.com/a")).startswith("prefix part a lowercase RFC 1123")
    assert str(v.label_key_error("a/b/c")).startswith("a qualified name must consist of")
    assert v.label_key_error("x" * 64) is not None
    assert str(v.label_key_error("x" * 64)) == "name part must be no more than 63 characters"
    assert v.label_key_error("-a") is not None


@pytest.mark.parametrize("value", ["", "a", "A.b_c-d", "1" * 63])
def test_label_value_accepts_valid(value: str) -> None:
    """Empty and well-formed values up to 63 characters are valid."""
    assert v.label_value_error(value) is None


@pytest.mark.parametrize("value", ["-a", "a-", "a b", "a/b", "1" * 64, "ü"])
def test_label_value_rejects(value: str) -> None:
    """Bad characters, bad edges and excess length are rejected."""
    assert v.label_value_error(value) is not None


def test_annotation_key_is_case_insensitive() -> None:
    """Annotation keys are lower-cased before the qualified-name check."""
    assert v.annotation_key_error("Example.COM/Key") is None
    assert v.label_key_error("Example.COM/Key") is not None
    assert v.annotation_key_error("bad key") is not None


def test_annotations_size_limit() -> None:
    """Keys plus values may total 262144 bytes, not one more."""
    assert v.annotations_size_error({"k": "x" * (262144 - 1)}) is None
    assert v.annotations_size_error({"k": "x" * 262144}) == "may not be more than 262144 bytes"
    assert v.annotations_size_error({}) is None


@pytest.mark.parametrize("name", ["HOME", "my.env-name", "1ABC", "A B", "a:b", "~!@#$%^&*()"])
def test_env_name_relaxed_accepts(name: str) -> None:
    """The relaxed rule accepts any printable ASCII except '='."""
    assert v.env_name_error(name) is None


def test_env_name_rejects() -> None:
    """Empty names, '=', control and non-ASCII characters are rejected."""
    assert v.env_name_error("") == "environment variable name must be non-empty"
    msg = (
        "a valid environment variable name must consist only of printable ASCII characters "
        "other than '='"
    )
    assert v.env_name_error("A=B") == msg
    assert v.env_name_error("A\tB") == msg
    assert v.env_name_error("Ä") == msg


def test_container_name_and_image() -> None:
    """Container names are labels; images must be non-empty without edge whitespace."""
    assert v.container_name_error("main") is None
    assert v.container_name_error("Main") is not None
    assert v.image_error("busybox:1.36") is None
    assert v.image_error("") == "Required value"
    assert v.image_error(" busybox") == "must not have leading or trailing whitespace"


def test_restart_policy() -> None:
    """Only Always, OnFailure and Never are supported."""
    for policy in v.RESTART_POLICIES:
        assert v.restart_policy_error(policy) is None
    assert v.restart_policy_error("") == "Required value"
    assert v.restart_policy_error("never") == 'supported values: "Always", "OnFailure", "Never"'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("512Mi", Decimal(512 * 2**20)),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("1e-3", Decimal("0.001")),
        ("+1", Decimal(1)),
        ("-1", Decimal(-1)),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("100n", Decimal("0.0000001")),
        ("3u", Decimal("0.000003")),
        ("1k", Decimal(1000)),
        ("1M", Decimal(10**6)),
        ("1G", Decimal(10**9)),
        ("1T", Decimal(10**12)),
        ("1P", Decimal(10**15)),
        ("1E", Decimal(10**18)),
        ("1Ki", Decimal(1024)),
        ("1Ti", Decimal(2**40)),
        ("1Pi", Decimal(2**50)),
        ("1Ei", Decimal(2**60)),
        ("0", Decimal(0)),
    ],
)
def test_parse_quantity_values(text: str, expected: Decimal) -> None:
    """Every suffix family parses to its exact value."""
    assert v.quantity_error(text) is None
    assert v.parse_quantity(text) == expected


@pytest.mark.parametrize(
    "text", ["", "Mi", "1.5.5", "5 m", " 5", "5 ", ".", "+", "abc", "1\n", "1/2", "0x10"]
)
def test_quantity_rejects_garbage_with_format_message(text: str) -> None:
    """Malformed quantities get the server's ErrFormatWrong message."""
    err = v.quantity_error(text)
    assert err is not None
    assert err.startswith("quantities must match the regular expression")
    with pytest.raises(ValueError, match="quantities must match"):
        v.parse_quantity(text)


@pytest.mark.parametrize("text", ["1i", "0.1mi", "1K", "1e", "1mm", "1kk"])
def test_quantity_rejects_unknown_suffix(text: str) -> None:
    """Letters from the suffix alphabet in an unknown combination are a suffix error."""
    err = v.quantity_error(text)
    assert err is not None


def test_quantity_unknown_suffix_message() -> None:
    """An unknown suffix gets ErrSuffix's text; an absurd exponent ErrNumeric's."""
    assert v.quantity_error("1K") == "unable to parse quantity's suffix"
    assert v.quantity_error("1e99999999") == "unable to parse numeric part of quantity"


def test_config_map_key() -> None:
    """Secret and ConfigMap data keys follow the server's key rule, '.' and '..' excluded."""
    assert v.config_map_key_error("env.TOKEN") is None
    assert v.config_map_key_error("file-0") is None
    assert v.config_map_key_error("a/b") is not None
    assert v.config_map_key_error("..") is not None
    assert v.config_map_key_error("..a") == "must not start with '..'"
    assert v.config_map_key_error("k" * 254) == "must be no more than 253 characters"
