"""Resource quantities as the API server decodes and stores them (``10n`` -> ``1m``)."""

from __future__ import annotations

import functools
import math
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from podrunner import _validation
from podrunner.backends.fake.field_errors import decode_error
from podrunner.backends.fake.memo import v

__all__ = ["canonical_quantity", "decode_quantity", "number_quantity"]

_DEC_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BIN_SUFFIX = ((60, "Ei"), (50, "Pi"), (40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki"))
_BIN_EXPONENTS = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DEC_EXPONENTS = {
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
_QTY_RE = re.compile(r"^([+-]?)([0-9]*)(?:\.([0-9]*))?(.*)$")
_QUANTITY_RE_MSG = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def _format_of(suffix: str) -> str:
    if suffix.endswith("i"):
        return "binary"
    if suffix[:1] in ("e", "E"):
        return "exponent"
    return "decimal"


def _render(value: Decimal, fmt: str) -> str:
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mag = -value if value < 0 else value
    if fmt == "binary" and mag >= 1024 and mag == mag.to_integral_value():
        n = int(mag)
        for shift, suffix in _BIN_SUFFIX:
            if n % (1 << shift) == 0:
                return f"{sign}{n >> shift}{suffix}"
        return f"{sign}{n}"
    exp = 18
    while exp > -9:
        scaled = mag.scaleb(-exp)
        if scaled == scaled.to_integral_value() and scaled >= 1:
            break
        exp -= 3
    mantissa = int(mag.scaleb(-exp).to_integral_value(ROUND_CEILING))
    if fmt == "exponent":
        return f"{sign}{mantissa}" + (f"e{exp}" if exp else "")
    return f"{sign}{mantissa}{_DEC_SUFFIX[exp]}"


def _reusable(text: str) -> bool:
    """Whether the server keeps the string as written (ParseQuantity's canonical fast path)."""
    m = _QTY_RE.match(text)
    if m is None:
        return False
    _, num, denom, suffix = m.groups()
    fmt = _format_of(suffix)
    if fmt == "binary":
        exponent = _BIN_EXPONENTS.get(suffix)
        if exponent is None or denom:
            return False
        value = int(num or "0")
        return exponent % 10 == 0 and (value & 0x07) != 0
    if fmt == "exponent":
        try:
            exponent = int(suffix[1:])
        except ValueError:
            return False
    else:
        found = _DEC_EXPONENTS.get(suffix)
        if found is None:
            return False
        exponent = found
    scale = exponent - len(denom or "")
    shifted = (num or "") + (denom or "")
    if not shifted or scale < -9:
        return False
    return scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"


@functools.lru_cache(maxsize=4096)
def canonical_quantity(text: str, milli: bool) -> str:
    """Return ``text`` as the server stores it (rounded up to ``1m`` when ``milli``)."""
    amount = _validation.parse_quantity(text)
    m = _QTY_RE.match(text)
    fmt = _format_of(m.group(4) if m else "")
    places = Decimal("0.001") if milli else Decimal("1e-9")
    try:
        rounded = amount.quantize(places, rounding=ROUND_CEILING)
    except InvalidOperation:
        return text
    if rounded == amount and _reusable(text):
        return text
    if fmt == "binary" and -1024 < rounded < 1024:
        fmt = "decimal"
    if fmt == "binary" and rounded != rounded.to_integral_value():
        fmt = "decimal"
    return _render(rounded, fmt)


def number_quantity(value: float) -> str:
    """The text of a JSON number given where a quantity belongs."""
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "nan"
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def decode_quantity(kind: str, value: object) -> str:
    """The quantity ``value`` as text (a JSON number becomes its text), or the 400 of a bad one."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = number_quantity(value)
    if not isinstance(value, str) or v.quantity_error(value):
        raise decode_error(kind, _QUANTITY_RE_MSG)
    return value
