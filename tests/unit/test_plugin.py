"""The pytest plugin as a downstream project uses it: pytester runs with no conftest."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from podrunner.testing.kwok import VERSIONS, default_bin_dir

pytest_plugins = ["pytester"]

DOWNSTREAM = """
from podrunner import PodRunner, PodSpec
from podrunner.testing import assert_pod_created, assert_run_state

def test_fake(podrunner_fake):
    podrunner_fake.when(image="busybox:*").succeed(logs="hi\\n", after=2.0)
    result = PodRunner(podrunner_fake.backend).run(
        PodSpec(image="busybox:1.36", command=["echo", "hi"], labels={"team": "ml"})
    )
    assert_run_state(result, "Succeeded", exit_code=0, logs="hi")
    assert_pod_created(podrunner_fake, labels={"team": "ml"}, image="busybox:*")

def test_runner(podrunner_runner):
    spec = PodSpec(
        image="busybox:1.36",
        command=["sh", "-c", "echo hi; exit 3"],
        annotations={"sim.podrunner.dev/exit-code": "3", "sim.podrunner.dev/logs": "hi\\n"},
    )
    result = podrunner_runner.run(spec, timeout=60)
    assert_run_state(result, "Failed", reason="Error", exit_code=3, logs="hi")
"""


# Resolved at import, before pytester replaces HOME for the test.
KWOK_BIN_DIR = default_bin_dir()


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:kmock", "-p", "no:cacheprovider", *args)


def test_downstream_file_passes_on_the_fake(pytester: pytest.Pytester) -> None:
    """A conftest-free test file using podrunner_fake and podrunner_runner passes."""
    pytester.makepyfile(DOWNSTREAM)
    result = _run(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["podrunner: backend fake (from default)"])


@pytest.mark.integration
def test_downstream_file_passes_on_kwok(
    pytester: pytest.Pytester, pytestconfig: pytest.Config
) -> None:
    """The same file passes unchanged with --podrunner-backend=kwok (skips without binaries)."""
    from podrunner.testing.plugin import selected_backend

    if selected_backend(pytestconfig) != "kwok":
        pytest.skip("starts a kwok control plane: run with --podrunner-backend=kwok")
    # pytester gives the inner run a fresh HOME: point it at the binaries already built.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PODRUNNER_CONTROLPLANE_BIN", str(KWOK_BIN_DIR))
        pytester.makepyfile(DOWNSTREAM)
        result = _run(pytester, "--podrunner-backend=kwok", "-rs")
    result.assert_outcomes(passed=2)


def test_settings_precedence(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Command line beats environment beats ini, and the header says where it came from."""
    pytester.makeini("[pytest]\npodrunner_backend = kind\n")
    pytester.makepyfile("def test_x(): pass")
    _run(pytester).stdout.fnmatch_lines(["podrunner: backend kind (from ini), kind cluster *"])
    monkeypatch.setenv("PODRUNNER_BACKEND", "kubeconfig")
    _run(pytester).stdout.fnmatch_lines(
        ["podrunner: backend kubeconfig (from $PODRUNNER_BACKEND)*"]
    )
    _run(pytester, "--podrunner-backend=fake").stdout.fnmatch_lines(
        ["podrunner: backend fake (from --podrunner-backend)"]
    )
    monkeypatch.setenv("PODRUNNER_BACKEND", "nope")
    result = _run(pytester)
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*$PODRUNNER_BACKEND: backend 'nope' is not one of*"])


def test_unknown_marker_argument_is_named(pytester: pytest.Pytester) -> None:
    """An unknown marker key errors at setup, naming the key and the known ones."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.podrunner(scirpt=print)
        def test_x(podrunner_fake):
            pass

        @pytest.mark.podrunner(backend="minikube")
        def test_y(podrunner_runner):
            pass
        """
    )
    result = _run(pytester)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*unknown argument 'scirpt' (known: backend, script, *",
            "*backend='minikube' is not one of*",
        ]
    )


def test_marker_scripts_the_fake(pytester: pytest.Pytester) -> None:
    """script= prepares the test's cluster; the closest marker wins."""
    pytester.makepyfile(
        """
        import pytest
        from podrunner import PodSpec

        def oom(cluster):
            cluster.when(image="app:*").oom()

        pytestmark = pytest.mark.podrunner(script=lambda c: c.when(image="app:*").succeed())

        @pytest.mark.podrunner(script=oom)
        def test_oom(podrunner_runner):
            result = podrunner_runner.run(PodSpec(image="app:1", command=["x"]))
            assert result.reason.value == "OOMKilled"

        def test_ok(podrunner_runner):
            assert podrunner_runner.run(PodSpec(image="app:1", command=["x"])).ok
        """
    )
    _run(pytester).assert_outcomes(passed=2)


def test_failure_report_shows_pods(pytester: pytest.Pytester) -> None:
    """A failed test's report shows its pods: state, events, manifest and log tail."""
    pytester.makepyfile(
        """
        from podrunner import CleanupPolicy, PodSpec

        def test_x(podrunner_fake, podrunner_runner):
            podrunner_fake.when(image="app:*").fail(exit_code=7, logs="something broke\\n")
            result = podrunner_runner.run(
                PodSpec(image="app:1", command=["run"]), cleanup=CleanupPolicy.NEVER
            )
            assert result.exit_code == 0
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- podrunner pods -*",
            "pod default/podrunner-*: Failed (Error) exit 7",
            "  events:",
            "*Started container main*",
            "  manifest:",
            "*image: app:1*",
            "  log tail (last 20 lines):",
            "    something broke",
        ]
    )
    # A failed test is not reported twice for the pod it left.
    assert "left 1 object" not in result.stdout.str()


def test_leftovers_fail_at_teardown_unless_allowed(pytester: pytest.Pytester) -> None:
    """A pod left behind fails the test with a readable list; allow_leftovers opts out."""
    pytester.makepyfile(
        """
        import pytest
        from podrunner import CleanupPolicy, PodSpec

        def test_left(podrunner_runner):
            podrunner_runner.run(
                PodSpec(image="app:1", command=["x"], secret_env={"T": "s"}),
                cleanup=CleanupPolicy.NEVER,
            )

        @pytest.mark.podrunner(allow_leftovers=True)
        def test_allowed(podrunner_runner):
            podrunner_runner.run(PodSpec(image="app:1", command=["x"]), cleanup=CleanupPolicy.NEVER)
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*podrunner: the test left 2 object(s) behind:",
            "  - Pod default/podrunner-* (Succeeded)",
            "  - Secret default/podrunner-*, owned by a pod",
            "*allow_leftovers=True*",
        ]
    )


def test_assertion_helpers_are_rewritten(pytester: pytest.Pytester) -> None:
    """A failing helper shows pytest's comparison, not a bare AssertionError."""
    pytester.makepyfile(
        """
        from podrunner.testing import assert_pod_created

        def test_x(podrunner_fake):
            assert_pod_created(podrunner_fake, labels={"team": "ml"})
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no pod matching {'labels': {'team': 'ml'}} was created*"])
    result.stdout.fnmatch_lines(["*assert []*"])


def test_plugin_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    """Collecting a project without podrunner fixtures loads neither kubernetes nor the fake."""
    pytester.makepyfile(
        """
        import sys

        def test_modules():
            assert "podrunner.testing.plugin" in sys.modules
            for heavy in ("kubernetes", "podrunner.backends.fake", "rich", "yaml", "filelock"):
                assert heavy not in sys.modules, heavy
        """
    )
    _run(pytester).assert_outcomes(passed=1)


def test_kwok_fixture_skips_without_binaries(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Selecting kwok without its binaries skips with the reason instead of failing."""
    monkeypatch.setenv("PODRUNNER_CONTROLPLANE_BIN", str(pytester.path / "nothing"))
    pytester.makepyfile("def test_x(podrunner_runner):\n    pass\n")
    result = _run(pytester, "--podrunner-backend=kwok", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no kwok cluster: control-plane binaries missing*"])
    # The command it names is in the wheel, not in the source tree's tools/.
    result.stdout.fnmatch_lines(
        ["*build them with `python -m podrunner.testing.controlplane build`*"]
    )


def test_controlplane_build_tool_ships_in_the_package(tmp_path: Path) -> None:
    """The build tool and its Go modules are package data; bin-dir agrees with KwokCluster."""
    import podrunner.testing.controlplane as controlplane
    from podrunner.testing.controlplane.build import PATCHES, _targets

    package = resources.files(controlplane)
    for target in _targets():
        for name in ("go.mod", "go.sum"):
            assert package.joinpath(target.module, name).is_file(), (target.module, name)
    for _, patches in PATCHES.values():
        assert all(path.is_file() for path in patches.values())
    # Run from an unrelated directory, as a pip user would.
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join(sys.path)}
    for key in ("PODRUNNER_CONTROLPLANE_BIN", "PODRUNNER_CONTROLPLANE_CACHE", "XDG_CACHE_HOME"):
        env.pop(key, None)
    out = subprocess.run(
        [sys.executable, "-m", "podrunner.testing.controlplane", "bin-dir"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    key = "k8s-{kubernetes}_etcd-{etcd}_kwok-{kwok}".format(**VERSIONS)
    assert out == str(tmp_path / ".cache" / "podrunner" / "controlplane" / key / "bin")
    usage = subprocess.run(
        [sys.executable, "-m", "podrunner.testing.controlplane", "nope"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 2
    assert "python -m podrunner.testing.controlplane build" in usage.stderr
