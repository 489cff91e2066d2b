"""Size limits of one pod: what execve, the API server and etcd would refuse later, by size.

Checked when a :class:`~podrunner.spec.PodSpec` is made, so an oversized spec fails before any
API call instead of at the create (422/413/500) or at the container's start ("Argument list
too long").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from podrunner import _validation as v
from podrunner.errors import REDACTED, SpecError
from podrunner.spec._fields import SecretRef, _blen
from podrunner.spec.values import EnvVar

__all__ = ["MAX_ARG_BYTES", "MAX_EXEC_BYTES", "MAX_POD_CONTENT_BYTES", "arg_rule", "check_sizes"]

MAX_ARG_BYTES = 128 * 1024 - 1
"""Longest single argument or ``NAME=value`` environment string ``execve`` takes, in bytes.

Linux caps each string at ``MAX_ARG_STRLEN`` (32 pages, 131072 bytes, terminating NUL
included); a longer one fails at container start with "Argument list too long".
"""

MAX_EXEC_BYTES = 2 * 1024 * 1024 - 64 * 1024
"""Most bytes the argv and environment strings of one container may take together.

``execve`` refuses more than ``ARG_MAX`` (a quarter of the 8 MiB default stack, 2 MiB);
64 KiB are left for what the image and the kubelet add (``PATH``, service variables...).
"""

MAX_POD_CONTENT_BYTES = 1024 * 1024
"""Most bytes the strings of one pod (argv, environment, labels, annotations...) may total.

etcd refuses a request over 1.5 MiB (its default ``--max-request-bytes``), and the stored pod
grows after the create (status, managed fields); 1 MiB keeps well clear of that limit, and is
the limit the API server applies to a Secret's or ConfigMap's data.
"""


def arg_rule(size: int, what: str) -> str:
    """The rule a string over ``MAX_ARG_BYTES`` breaks, for a SpecError."""
    return (
        f"{what} is {size} bytes; execve takes at most {MAX_ARG_BYTES} bytes per string "
        "(MAX_ARG_STRLEN): pass large data in a file (secret_files, a volume) instead"
    )


class Sized(Protocol):
    """What :func:`check_sizes` reads of a :class:`~podrunner.spec.PodSpec` (no import cycle)."""

    @property
    def image(self) -> str: ...
    @property
    def command(self) -> tuple[str, ...]: ...
    @property
    def env(self) -> tuple[EnvVar, ...]: ...
    @property
    def blank_env(self) -> tuple[str, ...]: ...
    @property
    def secret_env(self) -> Mapping[str, str | SecretRef]: ...
    @property
    def secret_files(self) -> Mapping[str, str | SecretRef]: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...
    @property
    def node_selector(self) -> Mapping[str, str]: ...


def check_sizes(spec: Sized) -> None:
    """Refuse what the kernel, the API server or etcd would refuse later, by size."""
    # The container's environment, as execve gets it: "NAME=value" strings.
    exec_total = sum(_blen(arg) + 1 for arg in spec.command)
    for name in spec.blank_env:
        exec_total += _blen(name) + 2
    for env in spec.env:
        entry = _blen(env.name) + 1 + _blen(env.value or "")
        if entry > MAX_ARG_BYTES:
            raise SpecError(f"env[{env.name}]", env.value, arg_rule(entry, "NAME=value"))
        exec_total += entry + 1
    secret_sizes = {"secret_env": 0, "secret_files": 0}
    for name, item in spec.secret_env.items():
        size = 0 if isinstance(item, SecretRef) else _blen(item)
        entry = _blen(name) + 1 + size
        if entry > MAX_ARG_BYTES:
            raise SpecError(f"secret_env[{name}]", REDACTED, arg_rule(entry, "NAME=value"))
        exec_total += entry + 1
        secret_sizes["secret_env"] += size
    for content in spec.secret_files.values():
        if not isinstance(content, SecretRef):
            secret_sizes["secret_files"] += _blen(content)
    secret_total = sum(secret_sizes.values())
    if secret_total > v.SECRET_DATA_SIZE_LIMIT:
        field = max(secret_sizes, key=lambda k: secret_sizes[k])
        raise SpecError(
            field,
            REDACTED,
            f"the per-run Secret would hold {secret_total} bytes of data; the API server "
            f"takes at most {v.SECRET_DATA_SIZE_LIMIT} (1 MiB) in one Secret: put larger "
            "data in an existing Secret (SecretRef) or a volume",
        )
    parts = {
        "image": _blen(spec.image),
        "command": sum(_blen(arg) for arg in spec.command),
        "env": sum(_blen(e.name) + _blen(e.value or "") for e in spec.env)
        + sum(_blen(name) for name in (*spec.blank_env, *spec.secret_env)),
        "labels": sum(_blen(k) + _blen(x) for k, x in spec.labels.items()),
        "annotations": sum(_blen(k) + _blen(x) for k, x in spec.annotations.items()),
        "node_selector": sum(_blen(k) + _blen(x) for k, x in spec.node_selector.items()),
        "secret_files": sum(_blen(path) for path in spec.secret_files),
    }
    pod_total = sum(parts.values())
    if pod_total > MAX_POD_CONTENT_BYTES:
        field = max(parts, key=lambda k: parts[k])
        raise SpecError(
            field,
            REDACTED if field == "secret_files" else getattr(spec, field),
            f"the pod's text totals {pod_total} bytes ({field}: {parts[field]}); one pod "
            f"may hold at most {MAX_POD_CONTENT_BYTES} (etcd refuses objects over 1.5 "
            "MiB): pass large data in a file (secret_files, a volume) instead",
        )
    if exec_total > MAX_EXEC_BYTES:
        raise SpecError(
            "command",
            spec.command,
            f"the argv and environment total {exec_total} bytes; execve takes at most "
            f"{MAX_EXEC_BYTES} (ARG_MAX, less room for the image's own variables)",
        )
