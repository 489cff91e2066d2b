"""Keys and credentials the API server needs, written with the standard library only."""

from __future__ import annotations

import base64
import secrets

__all__ = ["ec_private_key_pem"]


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def ec_private_key_pem() -> bytes:
    """Return a fresh P-256 private key as SEC1 PEM, using only the standard library.

    Go derives the public point from the scalar, so the optional public-key field is omitted.
    """
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    scalar = (secrets.randbelow(order - 1) + 1).to_bytes(32, "big")
    oid_prime256v1 = bytes.fromhex("06082a8648ce3d030107")
    body = (
        b"\x02\x01\x01"
        + b"\x04"
        + _der_length(len(scalar))
        + scalar
        + b"\xa0"
        + _der_length(len(oid_prime256v1))
        + oid_prime256v1
    )
    der = b"\x30" + _der_length(len(body)) + body
    b64 = base64.encodebytes(der).replace(b"\n", b"")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (
        b"-----BEGIN EC PRIVATE KEY-----\n"
        + b"\n".join(lines)
        + b"\n-----END EC PRIVATE KEY-----\n"
    )
