"""The podrunner marker's options and the session's settings, shared by the plugin and fixtures.

Kept apart from :mod:`podrunner.testing.plugin` (the hooks) and
:mod:`podrunner.testing.fixtures` so that both import it and neither imports the other. Like the
plugin, this module loads in every test session: standard library and pytest only.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "BACKENDS",
    "DEFAULT_KIND_CLUSTER",
    "MARKER_HELP",
    "MarkerOptions",
    "Settings",
    "marker_options",
    "selected_backend",
    "settings",
]

BACKENDS = ("fake", "kwok", "kind", "kubeconfig")
DEFAULT_KIND_CLUSTER = "podrunner-test"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")

MARKER_HELP = (
    "podrunner(*, backend=None, script=None, runtime='scripted', seed=None, "
    "allow_leftovers=False, auto_create_namespaces=False): per-test settings of the podrunner "
    "fixtures. backend: run this test on 'fake', 'kwok', 'kind' or 'kubeconfig' whatever "
    "--podrunner-backend says; script: a function called with the fresh FakeCluster before the "
    "test (fake only: a scripted test is skipped on real clusters); runtime, seed, "
    "auto_create_namespaces: FakeCluster arguments; allow_leftovers: do not fail the test for "
    "pods or Secrets it leaves behind."
)


class Settings(NamedTuple):
    """The session's podrunner settings, each from the command line, environment or ini.

    Attributes:
        backend: ``fake``, ``kwok``, ``kind`` or ``kubeconfig``.
        backend_source: Where ``backend`` came from (``--podrunner-backend``,
            ``$PODRUNNER_BACKEND``, ``ini`` or ``default``).
        kubeconfig: Kubeconfig of the ``kubeconfig`` backend (``None``: the default lookup).
        kind_cluster: Name of the kind cluster to reuse or create.
        keep_cluster: Keep a kind cluster the session created (kwok: keep its work directory).
    """

    backend: str
    backend_source: str
    kubeconfig: str | None
    kind_cluster: str
    keep_cluster: bool


# The marker's keywords, in the order the error message lists them.
_FIELDS = ("backend", "script", "runtime", "seed", "allow_leftovers", "auto_create_namespaces")


class MarkerOptions:
    """Validated arguments of ``@pytest.mark.podrunner`` (keyword-only, so typos are errors).

    A plain class, not a dataclass: this module loads in every test session of every project
    that installs podrunner, and each dataclass costs a code generation at import.

    Attributes:
        backend: Backend for this test, overriding the session's.
        script: Called with the test's :class:`~podrunner.testing.FakeCluster` before the test.
        runtime: ``scripted`` or ``local`` (:class:`FakeCluster` argument).
        seed: Seed for names and uids (:class:`FakeCluster` argument).
        allow_leftovers: Do not fail the test for pods or Secrets left behind.
        auto_create_namespaces: :class:`FakeCluster` argument.
    """

    __slots__ = (
        "allow_leftovers",
        "auto_create_namespaces",
        "backend",
        "runtime",
        "script",
        "seed",
    )

    def __init__(
        self,
        *,
        backend: str | None = None,
        script: Callable[[Any], object] | None = None,
        runtime: str = "scripted",
        seed: int | None = None,
        allow_leftovers: bool = False,
        auto_create_namespaces: bool = False,
    ) -> None:
        if backend is not None and backend not in BACKENDS:
            raise ValueError(
                f"@pytest.mark.podrunner: backend={backend!r} is not one of {BACKENDS}"
            )
        if runtime not in ("scripted", "local"):
            raise ValueError(
                f"@pytest.mark.podrunner: runtime={runtime!r} is not 'scripted' or 'local'"
            )
        if script is not None and not callable(script):
            raise TypeError(f"@pytest.mark.podrunner: script={script!r} is not callable")
        self.backend = backend
        self.script = script
        self.runtime = runtime
        self.seed = seed
        self.allow_leftovers = allow_leftovers
        self.auto_create_namespaces = auto_create_namespaces

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS)
        return f"MarkerOptions({args})"


_SETTINGS = pytest.StashKey[Settings]()
_MARKERS = pytest.StashKey[MarkerOptions]()


def marker_options(item: pytest.Item) -> MarkerOptions:
    """Merge the ``podrunner`` markers of ``item`` (the closest wins) and validate them.

    Raises:
        TypeError: A positional argument or an unknown keyword (named in the message).
        ValueError: A value out of range.
    """
    __tracebackhide__ = True
    cached = item.stash.get(_MARKERS, None)
    if cached is not None:
        return cached
    merged: dict[str, Any] = {}
    # iter_markers yields the closest marker first; apply the farthest first so closer wins.
    for mark in reversed(list(item.iter_markers("podrunner"))):
        if mark.args:
            raise TypeError(
                f"@pytest.mark.podrunner takes keyword arguments only, got {mark.args!r}"
            )
        unknown = sorted(set(mark.kwargs) - set(_FIELDS))
        if unknown:
            raise TypeError(
                f"@pytest.mark.podrunner: unknown argument {unknown[0]!r} "
                f"(known: {', '.join(_FIELDS)})"
            )
        merged.update(mark.kwargs)
    options = MarkerOptions(**merged)
    item.stash[_MARKERS] = options
    return options


def _flag(value: str, where: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise pytest.UsageError(f"{where}: expected a boolean (1/0, true/false), got {value!r}")


def settings(config: pytest.Config) -> Settings:
    """Resolve (once per session) the podrunner settings, command line first.

    Raises:
        pytest.UsageError: An environment or ini value is not valid.
    """
    cached = config.stash.get(_SETTINGS, None)
    if cached is not None:
        return cached
    backend: str | None = config.getoption("podrunner_backend")
    source = "--podrunner-backend"
    if not backend:
        backend, source = os.environ.get("PODRUNNER_BACKEND") or None, "$PODRUNNER_BACKEND"
    if not backend:
        backend, source = str(config.getini("podrunner_backend") or "") or None, "ini"
    if not backend:
        backend, source = "fake", "default"
    if backend not in BACKENDS:
        raise pytest.UsageError(
            f"{source}: backend {backend!r} is not one of {', '.join(BACKENDS)}"
        )
    kubeconfig = (
        config.getoption("podrunner_kubeconfig")
        or os.environ.get("PODRUNNER_KUBECONFIG")
        or str(config.getini("podrunner_kubeconfig") or "")
        or None
    )
    kind_cluster = (
        config.getoption("podrunner_kind_cluster")
        or os.environ.get("PODRUNNER_KIND_CLUSTER")
        or str(config.getini("podrunner_kind_cluster") or "")
        or DEFAULT_KIND_CLUSTER
    )
    keep: bool = config.getoption("podrunner_keep_cluster")
    if not keep:
        env = os.environ.get("PODRUNNER_KEEP_CLUSTER")
        if env is not None:
            keep = _flag(env, "$PODRUNNER_KEEP_CLUSTER")
        else:
            keep = bool(config.getini("podrunner_keep_cluster"))
    result = Settings(backend, source, kubeconfig, kind_cluster, keep)
    config.stash[_SETTINGS] = result
    return result


def selected_backend(config: pytest.Config) -> str:
    """The backend chosen by command line, then environment, then ini (``fake`` by default)."""
    return settings(config).backend
