"""Validation rules of the Kubernetes API server, as pure functions.

Each ``*_error`` function returns ``None`` for a valid value, or the API server's own message
for an invalid one: the ``detail`` part of a ``field.Error`` (what follows ``Invalid value:
"x": `` in a 422 cause). When the server would report several problems for one value they are
joined with ``"; "``, in the server's order.

The rules and texts follow ``k8s.io/apimachinery/pkg/util/validation`` (``IsDNS1123Label``,
``IsDNS1123Subdomain``, ``IsQualifiedName``, ``IsValidLabelValue``, ``IsRelaxedEnvVarName``),
``pkg/util/validation/field`` (``TooLong``, ``NotSupported``, ``Required``),
``apimachinery/pkg/api/validation`` (``ValidateAnnotations``) and
``apimachinery/pkg/api/resource`` (the quantity grammar). The spec builder uses them to fail
early with a :class:`~podrunner.errors.SpecError`; the fake cluster uses them to answer 422
exactly as a real API server would, so both sides cannot disagree about what is valid.

Lengths are counted in UTF-8 bytes, as Go's ``len`` does. Regexes are matched with
``fullmatch`` and explicit ASCII classes: Python's ``$`` would accept a trailing newline and its
digit class would accept non-ASCII digits, both of which Go's RE2 patterns reject.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DNS1123_LABEL_MAX_LENGTH",
    "DNS1123_SUBDOMAIN_MAX_LENGTH",
    "LABEL_VALUE_MAX_LENGTH",
    "MAX_REQUEST_BODY_BYTES",
    "QUALIFIED_NAME_MAX_LENGTH",
    "RESTART_POLICIES",
    "SECRET_DATA_SIZE_LIMIT",
    "TOTAL_ANNOTATION_SIZE_LIMIT",
    "annotation_key_error",
    "annotations_size_error",
    "config_map_key_error",
    "container_name_error",
    "dns1123_label_error",
    "dns1123_subdomain_error",
    "env_name_error",
    "image_error",
    "label_key_error",
    "label_value_error",
    "parse_quantity",
    "quantity_error",
    "resource_name_error",
    "restart_policy_error",
]

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
SECRET_DATA_SIZE_LIMIT = 1024 * 1024
"""``core.MaxSecretSize``: the most bytes a Secret's or a ConfigMap's data may hold (decoded)."""
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
"""The API server's limit on a write request's body (413 above it)."""
RESTART_POLICIES = ("Always", "OnFailure", "Never")
_NATIVE_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
_RELAXED_ENV_MSG = (
    "a valid environment variable name must consist only of printable ASCII characters other "
    "than '='"
)
# The regex apimachinery quotes in ErrFormatWrong; kept verbatim because users grep for it.
_QUANTITY_SPLIT_FMT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY_FORMAT_MSG = f"quantities must match the regular expression '{_QUANTITY_SPLIT_FMT}'"
_QUANTITY_SUFFIX_MSG = "unable to parse quantity's suffix"
_QUANTITY_NUMERIC_MSG = "unable to parse numeric part of quantity"

_CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_MAP_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"

_CONFIG_MAP_KEY_RE = re.compile(_CONFIG_MAP_KEY_FMT)
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_QUANTITY_SPLIT_RE = re.compile(r"([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)")
# The documented grammar (quantity.go): <number> ::= <digits> | <digits>.<digits> | <digits>.
# | .<digits>. The split regex above is looser ("1.5.5" and "." pass it), so numbers are
# checked again against this one.
_QUANTITY_NUMBER_RE = re.compile(r"([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)")
_QUANTITY_EXPONENT_RE = re.compile(r"[eE]([+-]?[0-9]+)")

_DECIMAL_SUFFIXES: dict[str, int] = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_BINARY_SUFFIXES: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}


# The checks are pure functions of short strings that repeat from object to object (label
# keys, images, quantities), so the fake cluster and the spec builder memoise them.
_cached = functools.lru_cache(maxsize=4096)


def _blen(value: str) -> int:
    """Length in bytes, as Go's ``len(string)`` counts it."""
    return len(value.encode("utf-8", "surrogatepass"))


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    # Mirrors validation.RegexError, including its odd "'x', regex used..." punctuation.
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    quoted = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {quoted}regex used for validation is '{fmt}')"


def _join(errors: list[str]) -> str | None:
    return "; ".join(errors) if errors else None


def _dns1123_label_errors(value: str) -> list[str]:
    errs: list[str] = []
    if _blen(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(_max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            # A valid subdomain but not a label: the length is checked, so it must be dots.
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def _dns1123_subdomain_errors(value: str) -> list[str]:
    errs: list[str] = []
    if _blen(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(_max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def _qualified_name_errors(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in _dns1123_subdomain_errors(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _blen(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + _max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append(
            "name part "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


@_cached
def dns1123_label_error(value: str) -> str | None:
    """Check a DNS-1123 label (pod names in practice, container names, volume names).

    Args:
        value: The candidate label.

    Returns:
        ``None`` when valid, else the API server's message.
    """
    return _join(_dns1123_label_errors(value))


@_cached
def dns1123_subdomain_error(value: str) -> str | None:
    """Check a DNS-1123 subdomain (object names such as Secrets, label key prefixes).

    Args:
        value: The candidate subdomain.

    Returns:
        ``None`` when valid, else the API server's message.
    """
    return _join(_dns1123_subdomain_errors(value))


@_cached
def label_key_error(key: str) -> str | None:
    """Check a label key: a qualified name (optional DNS subdomain prefix and ``/``).

    Args:
        key: The candidate key, e.g. ``app.kubernetes.io/name``.

    Returns:
        ``None`` when valid, else the API server's message.
    """
    return _join(_qualified_name_errors(key))


@_cached
def label_value_error(value: str) -> str | None:
    """Check a label value: empty, or at most 63 characters of ``[A-Za-z0-9_.-]``.

    Args:
        value: The candidate value.

    Returns:
        ``None`` when valid, else the API server's message.
    """
    errs: list[str] = []
    if _blen(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(_max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(
            _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return _join(errs)


@_cached
def annotation_key_error(key: str) -> str | None:
    """Check an annotation key: a qualified name, compared case-insensitively.

    The API server lower-cases annotation keys before the qualified-name check, so
    ``Example.COM/Key`` is accepted as an annotation key but not as a label key.

    Args:
        key: The candidate key.

    Returns:
        ``None`` when valid, else the API server's message.
    """
    return _join(_qualified_name_errors(key.lower()))


def annotations_size_error(annotations: Mapping[str, str]) -> str | None:
    """Check the total size of an object's annotations (keys plus values, 256 KiB at most).

    Args:
        annotations: The object's annotations.

    Returns:
        ``None`` when within the limit, else the API server's message.
    """
    total = sum(_blen(k) + _blen(v) for k, v in annotations.items())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        return f"may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"
    return None


@_cached
def env_name_error(name: str) -> str | None:
    """Check an environment variable name with the current (relaxed) API server rule.

    Since Kubernetes 1.34 (``RelaxedEnvironmentVariableValidation``, GA) a name may hold any
    printable ASCII character except ``=``; it must not be empty.

    Args:
        name: The candidate name.

    Returns:
        ``None`` when valid, else the API server's message.
    """
    errs: list[str] = []
    if not name:
        errs.append("environment variable name must be non-empty")
    if any(not (32 <= ord(c) <= 126) or c == "=" for c in name):
        errs.append(_RELAXED_ENV_MSG)
    return _join(errs)


def config_map_key_error(key: str) -> str | None:
    """Check a key of a ConfigMap's or Secret's ``data`` (``[-._a-zA-Z0-9]+``, 253 at most).

    Args:
        key: The candidate key.

    Returns:
        ``None`` when valid, else the API server's message.
    """
    errs: list[str] = []
    if _blen(key) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(_max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _CONFIG_MAP_KEY_RE.fullmatch(key):
        errs.append(
            _regex_error(
                _CONFIG_MAP_KEY_MSG, _CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name"
            )
        )
    # Keys become file names in volumes, so the server refuses the directory entries.
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return _join(errs)


def container_name_error(name: str) -> str | None:
    """Check a container name (a DNS-1123 label).

    Args:
        name: The candidate name.

    Returns:
        ``None`` when valid, else the API server's message.
    """
    return dns1123_label_error(name)


def image_error(image: str) -> str | None:
    """Check a container image reference as the API server does (presence and whitespace).

    The server does not parse the reference; a malformed one fails later at pull time
    (``InvalidImageName``).

    Args:
        image: The image reference.

    Returns:
        ``None`` when valid, else the API server's message (``"Required value"`` when empty).
    """
    if not image:
        return "Required value"
    if image.strip() != image:
        return "must not have leading or trailing whitespace"
    return None


def restart_policy_error(policy: str) -> str | None:
    """Check a pod restart policy (``Always``, ``OnFailure`` or ``Never``).

    Args:
        policy: The candidate policy.

    Returns:
        ``None`` when valid, ``"Required value"`` when empty, else the server's
        ``supported values: ...`` message.
    """
    if policy in RESTART_POLICIES:
        return None
    if not policy:
        return "Required value"
    return "supported values: " + ", ".join(f'"{p}"' for p in RESTART_POLICIES)


def resource_name_error(name: str) -> str | None:
    """Check a container resource name (``validateContainerResourceName``).

    A qualified name; without a domain it must be a standard resource (``cpu``, ``memory``,
    ``ephemeral-storage``, ``hugepages-*``); ``kubernetes.io/`` and ``requests.`` names are
    not container resources.

    Args:
        name: The candidate name, e.g. ``nvidia.com/gpu``.

    Returns:
        ``None`` when valid, else the API server's message.
    """
    error = label_key_error(name)
    if error:
        return error
    if "/" not in name:
        if name in _NATIVE_RESOURCES or name.startswith("hugepages-"):
            return None
        return "must be a standard resource for containers"
    if name.startswith(("kubernetes.io/", "requests.")):
        return "must be a standard resource for containers"
    return None


@_cached
def _parse_quantity(value: str) -> tuple[Decimal | None, str | None]:
    if not _QUANTITY_SPLIT_RE.fullmatch(value):
        return None, _QUANTITY_FORMAT_MSG
    number = _QUANTITY_NUMBER_RE.match(value)
    if number is None:
        return None, _QUANTITY_FORMAT_MSG
    suffix = value[number.end() :]
    sign, digits = number.groups()
    exponent = _QUANTITY_EXPONENT_RE.fullmatch(suffix)
    # Exact arithmetic: the default 28-digit context would round "1.000000000000000000001Ei".
    with localcontext() as ctx:
        ctx.prec = 200
        try:
            base = Decimal(sign + digits)
            if suffix in _DECIMAL_SUFFIXES:
                return base.scaleb(_DECIMAL_SUFFIXES[suffix]), None
            if suffix in _BINARY_SUFFIXES:
                return base * (2 ** _BINARY_SUFFIXES[suffix]), None
            if exponent is not None:
                return base.scaleb(int(exponent.group(1))), None
        except ArithmeticError:  # "1e99999999": beyond any representable quantity
            return None, _QUANTITY_NUMERIC_MSG
    if re.fullmatch(r"[eEinumkKMGTP]*[-+]?[0-9]*", suffix):
        # Letters from the suffix alphabet in an unknown combination ("Ki" is fine, "ki" is not).
        return None, _QUANTITY_SUFFIX_MSG
    return None, _QUANTITY_FORMAT_MSG


def quantity_error(value: str) -> str | None:
    """Check a Kubernetes resource quantity (``500m``, ``2``, ``1.5Gi``, ``1e3``...).

    The grammar is ``[+-]<number><suffix>`` where the suffix is a decimal SI suffix
    (``n u m k M G T P E`` or none), a binary one (``Ki Mi Gi Ti Pi Ei``) or a decimal
    exponent (``e3``, ``E-2``). No spaces, no other units.

    Args:
        value: The candidate quantity.

    Returns:
        ``None`` when valid, else the message ``resource.ParseQuantity`` gives.
    """
    return _parse_quantity(value)[1]


def parse_quantity(value: str) -> Decimal:
    """Parse a Kubernetes quantity into its exact value (``"500m"`` -> ``Decimal("0.5")``).

    Args:
        value: The quantity.

    Returns:
        The value as a :class:`~decimal.Decimal` (CPU in cores, memory in bytes).

    Raises:
        ValueError: The quantity does not follow the grammar; the message is the server's.
    """
    parsed, error = _parse_quantity(value)
    if parsed is None:
        raise ValueError(f"{value!r}: {error}")
    return parsed
