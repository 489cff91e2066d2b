"""The pytest plugin as a downstream project uses it: pytester runs with no conftest."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from podrunner.testing.controlplane.kwok import VERSIONS, default_bin_dir

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
    """A project without podrunner fixtures loads neither kubernetes, the fake nor attrs.

    The plugin loads in every session of every project that installs podrunner; what it costs
    there is measured in benchmarks/bench_plugin.py.
    """
    pytester.makepyfile(
        """
        import sys

        def test_modules():
            assert "podrunner.testing.plugin" in sys.modules
            heavy = (
                "kubernetes", "podrunner.backends.fake", "rich", "yaml", "filelock", "attrs",
                "attr", "podrunner.sdk", "podrunner.spec", "podrunner.run",
                "podrunner.testing._recording",
            )
            loaded = [name for name in heavy if name in sys.modules]
            assert loaded == []
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


def test_failure_report_shows_log_tail_after_default_cleanup(pytester: pytest.Pytester) -> None:
    """With the default cleanup the pod is gone at report time; its output is still shown."""
    pytester.makepyfile(
        """
        from podrunner import PodRunner, PodSpec

        def test_fixture_runner(podrunner_fake, podrunner_runner):
            podrunner_fake.when(image="app:*").fail(exit_code=7, logs="line 1\\nsomething broke\\n")
            result = podrunner_runner.run(PodSpec(image="app:1", command=["run"]))
            assert result.exit_code == 0

        def test_own_runner(podrunner_fake):
            podrunner_fake.when(image="app:*").fail(exit_code=7, logs="own runner broke\\n")
            result = PodRunner(podrunner_fake.backend).run(PodSpec(image="app:1", command=["x"]))
            assert result.exit_code == 0
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "pod default/podrunner-*: Failed (Error) exit 7 (deleted)",
            "  log tail (last 20 lines, as the run read it):",
            "    line 1",
            "    something broke",
        ]
    )
    result.stdout.fnmatch_lines(["    own runner broke"])
    assert "unavailable" not in result.stdout.str()


# -- the fake's scripting rules on real clusters ------------------------------------------------

EXPRESSIBLE = {
    "succeed": lambda r: r.succeed(logs="ok\n"),
    "succeed-later": lambda r: r.succeed(logs=[(0.0, "a\n"), (3.0, "b\n")], after=5.0),
    "fail": lambda r: r.fail(exit_code=3, logs="boom\n", after=2.0),
    "crash-loop": lambda r: r.crash_loop(exit_code=4),
    "oom": lambda r: r.oom(after=1.0, logs="eating\n"),
    "evict": lambda r: r.evict(after=1.0),
    "image-pull": lambda r: r.image_pull_error(),
    "unschedulable": lambda r: r.unschedulable(),
    "hang": lambda r: r.hang(logs="waiting\n"),
}
INEXPRESSIBLE = {
    "run": (lambda r: r.run(lambda ctx: 0), "run(fn)"),
    "restarts": (lambda r: r.crash_loop(restarts=2), "restarts=N"),
    "reason": (lambda r: r.fail(exit_code=1, reason="ContainerCannotRun"), "ContainerCannotRun"),
    "pull-reason": (lambda r: r.image_pull_error(reason="InvalidImageName"), "image_pull_error"),
    "sched-message": (lambda r: r.unschedulable(message="no GPUs"), "unschedulable(message"),
    "evict-message": (lambda r: r.evict(message="disk"), "evict(message"),
    "sigterm": (lambda r: r.hang(ignore_sigterm=True), "ignore_sigterm"),
    "exec": (lambda r: r.exec_handler(lambda req: 0), "exec_handler"),
}


def _outcome(runner: Any) -> tuple[Any, ...]:
    from podrunner import PodSpec

    try:
        result = runner.run(PodSpec(image="app:1", command=["x"]), timeout=600)
    except Exception as exc:
        return (type(exc).__name__,)
    return (result.state.phase, result.state.reason, result.exit_code, result.logs)


@pytest.mark.parametrize("name", sorted(EXPRESSIBLE))
def test_rules_reach_a_real_server_as_annotations(name: str) -> None:
    """A pod made through the simulating backend ends as the rule makes it end on the fake.

    The "server" is a second fake cluster: it follows the simulation annotations as kwok's
    stages do (the contract suite holds both to the same behaviour).
    """
    from podrunner import PodRunner
    from podrunner.testing import FakeCluster
    from podrunner.testing._recording import LogRecorder, SimulatingBackend

    scripted = FakeCluster()
    EXPRESSIBLE[name](scripted.when(image="app:*"))
    server = FakeCluster()
    simulated = PodRunner(SimulatingBackend(server.backend, LogRecorder(), scripted))
    assert _outcome(simulated) == _outcome(PodRunner(scripted.backend))
    [created] = [a for a in server.actions if a.verb == "create" and a.kind == "Pod"]
    pod = server.history("Pod", "default", created.name)[0]
    assert any(k.startswith("sim.podrunner.dev/") for k in pod["metadata"]["annotations"])


def test_rule_matching_follows_the_fake() -> None:
    """Only matching pods are annotated, times= is counted, and a pod's own annotations win."""
    from podrunner import PodRunner, PodSpec
    from podrunner.testing import FakeCluster
    from podrunner.testing._recording import LogRecorder, SimulatingBackend

    scripted = FakeCluster()
    scripted.when(image="app:*", times=1).fail(exit_code=5)
    runner = PodRunner(SimulatingBackend(FakeCluster().backend, LogRecorder(), scripted))
    assert runner.run(PodSpec(image="app:1", command=["x"])).exit_code == 5
    assert runner.run(PodSpec(image="app:1", command=["x"])).exit_code == 0
    assert runner.run(PodSpec(image="other:1", command=["x"])).exit_code == 0
    scripted.when(image="app:*").fail(exit_code=6)
    own = {"sim.podrunner.dev/exit-code": "9"}
    assert runner.run(PodSpec(image="app:1", command=["x"], annotations=own)).exit_code == 9


@pytest.mark.parametrize("name", sorted(INEXPRESSIBLE))
def test_inexpressible_rules_skip_before_creating(name: str) -> None:
    """A rule kwok cannot follow skips the test with the reason; nothing is left behind."""
    from podrunner import PodRunner, PodSpec
    from podrunner.testing import FakeCluster
    from podrunner.testing._recording import LogRecorder, SimulatingBackend

    script, words = INEXPRESSIBLE[name]
    scripted = FakeCluster()
    script(scripted.when(image="app:*"))
    server = FakeCluster()
    runner = PodRunner(SimulatingBackend(server.backend, LogRecorder(), scripted))
    spec = PodSpec(image="app:1", command=["x"], secret_env={"TOKEN": "s"})
    with pytest.raises(pytest.skip.Exception, match="kwok and real clusters cannot") as info:
        runner.run(spec, timeout=600)
    assert words in str(info.value)
    assert server.pods() == []
    assert server.secrets() == []


@pytest.mark.integration
def test_kwok_rules_report_and_skips(
    pytester: pytest.Pytester, pytestconfig: pytest.Config
) -> None:
    """On kwok a failed test shows its deleted pod's log tail; a Python rule skips, saying why."""
    from podrunner.testing.plugin import selected_backend

    if selected_backend(pytestconfig) != "kwok":
        pytest.skip("starts a kwok control plane: run with --podrunner-backend=kwok")
    pytester.makepyfile(
        """
        from podrunner import PodSpec

        def test_fails(podrunner_fake, podrunner_runner):
            podrunner_fake.when(image="app:*").fail(exit_code=7, logs="something broke\\n")
            result = podrunner_runner.run(PodSpec(image="app:1", command=["x"]), timeout=60)
            assert result.exit_code == 0

        def test_python_rule(podrunner_fake, podrunner_runner):
            podrunner_fake.when(image="app:*").run(lambda ctx: 0)
            podrunner_runner.run(PodSpec(image="app:1", command=["x"]), timeout=60)
        """
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PODRUNNER_CONTROLPLANE_BIN", str(KWOK_BIN_DIR))
        result = _run(pytester, "--podrunner-backend=kwok", "-rs")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "pod podrunner-test-*/podrunner-*: Failed (Error) exit 7 (deleted)",
            "  log tail (last 20 lines, as the run read it):",
            "    something broke",
        ]
    )
    result.stdout.fnmatch_lines(["*cannot follow this rule: a .run(fn) rule calls Python*"])


def test_scripted_tests_skip_where_a_real_kubelet_runs(pytester: pytest.Pytester) -> None:
    """On kind a marker script cannot hold (the command runs): skipped before any cluster."""
    pytester.makepyfile(
        """
        import pytest
        from podrunner import PodSpec

        @pytest.mark.podrunner(script=lambda c: c.when(image="app:*").oom())
        def test_oom(podrunner_runner):
            raise AssertionError("not reached")
        """
    )
    result = _run(pytester, "--podrunner-backend=kind", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*script=...): fake and kwok only, not kind*"])
