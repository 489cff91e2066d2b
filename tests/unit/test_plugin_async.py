"""The async fixtures as a downstream project uses them, under pytest-asyncio and anyio.

pytester runs a conftest-free file whose tests await ``podrunner_async_runner``: on the fake
by default, and unchanged on kwok with ``--podrunner-backend=kwok`` (the integration tier).
"""

from __future__ import annotations

import pytest
from test_plugin import KWOK_BIN_DIR, _run

pytest_plugins = ["pytester"]

DOWNSTREAM = """
import pytest
from podrunner import PodSpec
from podrunner.testing import assert_run_state

SPEC = PodSpec(
    image="busybox:1.36",
    command=["sh", "-c", "echo hi; exit 3"],
    annotations={"sim.podrunner.dev/exit-code": "3", "sim.podrunner.dev/logs": "hi\\n"},
)

@pytest.fixture
def anyio_backend():
    return "asyncio"

@pytest.mark.asyncio
async def test_with_pytest_asyncio(podrunner_async_runner):
    lines = []
    result = await podrunner_async_runner.run(SPEC, timeout=60, on_log=lines.append)
    assert_run_state(result, "Failed", reason="Error", exit_code=3, logs="hi")
    assert lines == ["hi"]

@pytest.mark.anyio
async def test_with_anyio(podrunner_async_runner):
    async with podrunner_async_runner.start(SPEC, timeout=60) as handle:
        assert [line async for line in handle.logs()] == ["hi"]
        assert (await handle.wait()).exit_code == 3

@pytest.mark.asyncio
@pytest.mark.podrunner(script=lambda c: c.when(image="app:*").oom(after=2.0))
async def test_scripted(podrunner_async_runner):
    result = await podrunner_async_runner.run(PodSpec(image="app:1", command=["x"]), timeout=60)
    assert_run_state(result, "Failed", reason="OOMKilled", exit_code=137)

@pytest.mark.asyncio
async def test_async_backend(podrunner_async_backend, podrunner_namespace):
    listed = await podrunner_async_backend.list("Pod", podrunner_namespace)
    assert listed.items == []
"""


def test_async_fixtures_on_the_fake(pytester: pytest.Pytester) -> None:
    """The async fixtures work under pytest-asyncio and anyio's plugin, on the fake."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(DOWNSTREAM)
    _run(pytester, "-W", "error").assert_outcomes(passed=4)


@pytest.mark.integration
def test_async_fixtures_on_kwok(pytester: pytest.Pytester, pytestconfig: pytest.Config) -> None:
    """The same file passes unchanged with --podrunner-backend=kwok."""
    from podrunner.testing.plugin import selected_backend

    if selected_backend(pytestconfig) != "kwok":
        pytest.skip("starts a kwok control plane: run with --podrunner-backend=kwok")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PODRUNNER_CONTROLPLANE_BIN", str(KWOK_BIN_DIR))
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
        pytester.makepyfile(DOWNSTREAM)
        result = _run(pytester, "--podrunner-backend=kwok", "-rs")
    result.assert_outcomes(passed=4)
