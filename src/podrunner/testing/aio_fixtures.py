"""The async pytest fixtures: ``podrunner_async_backend`` and ``podrunner_async_runner``.

==============================  ========  ================================================
fixture                         scope     what
==============================  ========  ================================================
``podrunner_async_backend``     function  the selected cluster for coroutines: the test's
                                          fake (``FakeCluster.async_backend``), or an
                                          :class:`~podrunner.backends.kubernetes.aio.
                                          AsyncKubernetesBackend` on kwok, kind or a
                                          kubeconfig
``podrunner_async_runner``      function  an :class:`~podrunner.AsyncPodRunner` on it and the
                                          test's namespace; on real clusters its pods follow
                                          ``podrunner_fake``'s rules, as ``podrunner_runner``'s
==============================  ========  ================================================

They are plain fixtures that hand out objects, so they work in tests run by pytest-asyncio
(``@pytest.mark.asyncio``) and by anyio's plugin (``@pytest.mark.anyio``) alike, with the same
``--podrunner-backend`` option as the sync fixtures. Nothing needs closing at teardown: on
the fake, a runner's tasks end with its runs; a real backend's connections are closed in the
test's event loop when it shuts down. The namespace, the leftover check and the failure
report are ``podrunner_namespace``'s, shared with the sync fixtures.

Nothing heavy is imported here: this module loads with the plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping

    from podrunner.backends.base import AsyncBackend
    from podrunner.backends.fake import FakeCluster
    from podrunner.run.aio_runner import AsyncPodRunner

__all__ = ["AsyncSimulatingBackend", "podrunner_async_backend", "podrunner_async_runner"]


@pytest.fixture
def podrunner_async_backend(
    request: pytest.FixtureRequest, podrunner_backend_name: str
) -> AsyncBackend:
    """The selected cluster for coroutines: the test's fake cluster, kwok, kind or a kubeconfig."""
    if podrunner_backend_name == "fake":
        fake: FakeCluster = request.getfixturevalue("podrunner_fake")
        return fake.async_backend
    from podrunner.backends.kubernetes.aio import AsyncKubernetesBackend

    # The sync backend of the session knows where the cluster is and who to be.
    sync: Any = request.getfixturevalue("podrunner_backend")
    return AsyncKubernetesBackend(getattr(sync, "_cluster", None))


@pytest.fixture
def podrunner_async_runner(
    request: pytest.FixtureRequest,
    podrunner_backend_name: str,
    podrunner_async_backend: AsyncBackend,
    podrunner_namespace: str,
) -> AsyncPodRunner:
    """An :class:`~podrunner.AsyncPodRunner` on the selected backend and the test's namespace.

    On real clusters the pods it creates carry the simulation annotations of the test's
    ``podrunner_fake`` rules (or marker ``script=``), so a scripted test runs unchanged on kwok.
    """
    __tracebackhide__ = True
    from podrunner.run.aio_runner import AsyncPodRunner

    backend: Any = podrunner_async_backend
    if podrunner_backend_name != "fake":
        from podrunner.testing.fixtures import _rules_fake

        backend = AsyncSimulatingBackend(backend, _rules_fake(request))
    return AsyncPodRunner(backend, namespace=podrunner_namespace)


class AsyncSimulatingBackend:
    """A real async backend whose created pods follow a fake cluster's scripting rules.

    Every call goes to ``inner``; ``create`` of a Pod adds the simulation annotations first,
    or skips the test when the rule cannot be expressed (as the sync fixtures do).
    """

    def __init__(self, inner: AsyncBackend, fake: FakeCluster | None) -> None:
        self.inner = inner
        self.fake = fake

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def clock(self) -> Any:
        """The inner backend's clock."""
        return self.inner.clock

    async def create(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create, annotating a Pod with the rules of the test's fake cluster."""
        __tracebackhide__ = True
        if manifest.get("kind") == "Pod" and self.fake is not None:
            from podrunner.testing._recording import Inexpressible, annotate

            try:
                manifest = annotate(manifest, self.fake)
            except Inexpressible as exc:
                pytest.skip(f"podrunner: kwok and real clusters cannot follow this rule: {exc}")
        return await self.inner.create(manifest, dry_run=dry_run)
