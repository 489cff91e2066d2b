"""Init containers and native sidecars: spec rules, manifests, the reducer, the fake, the runs."""

from __future__ import annotations

from typing import Any

import pytest

from podrunner import (
    AsyncPodRunner,
    CleanupPolicy,
    EnvVar,
    ImagePullError,
    InitContainer,
    InitContainerFailed,
    PodRunner,
    PodSpec,
    Resources,
    SecretRef,
    Sidecar,
    SpecError,
    Volume,
    build_manifests,
)
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.run.state import Phase, Reason, reduce
from podrunner.spec import containers, pod
from podrunner.testing import FakeCluster

HOUR = 3600.0
FETCH = InitContainer("fetch", image="alpine/git:2.45.2", command=["git", "clone", "r", "/w"])
PROXY = Sidecar("proxy", image="envoyproxy/envoy:v1.31", command=["envoy"])
SPEC = PodSpec(
    "busybox:1.36",
    ["sh", "-c", "make"],
    volumes=[Volume.empty_dir("/w")],
    secret_env={"TOKEN": "s3cret"},
    files={"/in/prompt.txt": "hi"},
    init_containers=[FETCH],
    sidecars=[PROXY],
)


def leftovers(cluster: FakeCluster) -> list[str]:
    out: list[str] = []
    for kind in ("Pod", "Secret", "ConfigMap"):
        listed = cluster.backend.list(kind, None, label_selector=MANAGED_SELECTOR)
        out += [f"{kind}/{o['metadata']['name']}" for o in listed.items]
    return out


# -- spec ------------------------------------------------------------------------------------


def test_limits_agree_with_the_pod_module() -> None:
    """The container module repeats the pod module's limits (it cannot import them)."""
    assert containers._MAX_ARG == pod.MAX_ARG_BYTES
    assert containers._MAX_EXEC == pod.MAX_EXEC_BYTES
    assert containers._MAX_POD_TEXT == pod.MAX_POD_CONTENT_BYTES


def test_values_are_converted_and_survive_copies() -> None:
    """Lists become tuples, mappings EnvVars; a copy of the spec keeps them as they are."""
    step = InitContainer("a", image="x", command=["t"], env={"K": "v"}, working_dir="/w")
    assert step.command == ("t",)
    assert step.env == (EnvVar("K", "v"),)
    spec = PodSpec("busybox", ["true"], init_containers=[step], sidecars=PROXY)
    assert spec.sidecars == (PROXY,)
    assert spec.with_image("busybox:2").init_containers == (step,)


def _init(**changes: Any) -> InitContainer:
    values: dict[str, Any] = {"image": "x", "command": ["t"], **changes}
    return InitContainer(values.pop("name", "a"), **values)


@pytest.mark.parametrize(
    ("build", "field", "rule"),
    [
        (lambda: _init(name="Bad_Name"), "init_container.name", "RFC 1123"),
        (lambda: Sidecar("s", image="", command=["t"]), "sidecar.image", "Required"),
        (lambda: _init(command=[]), "init_container.command", "at least one"),
        (lambda: _init(command="ls"), "init_container.command", "single string"),
        (lambda: _init(working_dir="w"), "init_container.working_dir", "absolute"),
        (lambda: _init(env=[("A=", "b")]), "init_container.env.name", "'='"),
        (lambda: _init(env=[("A", "1"), ("A", "2")]), "init_container.env", "duplicate"),
        (lambda: _init(resources={"cpu": 1}), "init_container.resources", "Resources"),
        (lambda: _init(command=["x" * 200_000]), "init_container.command[0]", "execve"),
    ],
)
def test_bad_container_values_name_field_value_and_rule(build: Any, field: str, rule: str) -> None:
    """Each container value is checked on construction with the main container's rules."""
    with pytest.raises(SpecError) as err:
        build()
    assert err.value.field == field
    assert rule in err.value.rule


_BIG = [_init(name=f"i{i}", command=["y" * 100_000]) for i in range(11)]


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"init_containers": [_init(name="main")]}, "init_containers[0].name", "container_name"),
        (
            {"sidecars": [Sidecar("a", image="x", command=["t"])], "init_containers": [_init()]},
            "init_containers[0].name",
            "sidecars[0].name",
        ),
        ({"sidecars": [PROXY, PROXY]}, "sidecars[1].name", "sidecars[0].name"),
        ({"init_containers": "fetch"}, "init_containers", "sequence of InitContainer"),
        ({"init_containers": [PROXY]}, "init_containers[0]", "InitContainer objects"),
        ({"sidecars": [FETCH]}, "sidecars[0]", "Sidecar objects"),
        ({"init_containers": _BIG}, "init_containers[10]", "1048576"),
    ],
)
def test_pod_level_rules_use_indexed_paths(changes: dict[str, Any], field: str, rule: str) -> None:
    """Unique names (the main container's too) and room in one pod object, before any call."""
    with pytest.raises(SpecError) as err:
        PodSpec("busybox", ["true"], **changes)
    assert err.value.field == field
    assert rule in err.value.rule


def test_a_renamed_main_container_frees_its_name() -> None:
    """The name rule follows container_name: "main" is free once the main one is renamed."""
    step = InitContainer("main", image="x", command=["t"])
    spec = PodSpec("busybox", ["true"], container_name="app", init_containers=[step])
    with pytest.raises(SpecError, match=r"init_containers\[0\]\.name"):
        spec.replace(container_name="main")


# -- manifest --------------------------------------------------------------------------------


def test_manifest_puts_sidecars_first_with_volumes_but_no_secrets() -> None:
    """Sidecars first, with the user volumes and the security defaults, never the secrets.

    The main container's secret env, secret files and files stay its own.
    """
    spec = SPEC.replace(
        init_containers=[
            InitContainer(
                "fetch",
                image="alpine/git:2.45.2",
                command=["git", "clone"],
                env=[EnvVar("GIT_TOKEN", secret_ref=SecretRef("git", "token"))],
                resources=Resources(cpu_limit="1"),
                working_dir="/w",
            )
        ]
    )
    pod_spec = build_manifests(spec).pod["spec"]
    proxy, fetch = pod_spec["initContainers"]
    assert list(pod_spec).index("initContainers") < list(pod_spec).index("containers")
    assert proxy == {
        "name": "proxy",
        "image": "envoyproxy/envoy:v1.31",
        "imagePullPolicy": "IfNotPresent",
        "command": ["envoy"],
        "restartPolicy": "Always",
        "volumeMounts": [{"name": "vol-0", "mountPath": "/w"}],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    assert "restartPolicy" not in fetch
    assert fetch["workingDir"] == "/w"
    assert fetch["resources"] == {"limits": {"cpu": "1"}}
    assert fetch["env"] == [
        {"name": "GIT_TOKEN", "valueFrom": {"secretKeyRef": {"name": "git", "key": "token"}}}
    ]
    main_mounts = {m["mountPath"] for m in pod_spec["containers"][0]["volumeMounts"]}
    assert main_mounts == {"/w", "/in"}
    assert fetch["volumeMounts"] == proxy["volumeMounts"]


def test_no_init_containers_no_key() -> None:
    """A spec without them builds the same pod as before (no empty list)."""
    assert "initContainers" not in build_manifests(PodSpec("busybox", ["true"])).pod["spec"]


# -- reducer ---------------------------------------------------------------------------------


_INITIALIZING = {"reason": "PodInitializing"}


def _pod(init: list[dict[str, Any]], *, phase: str = "Pending", policy: str = "Never") -> Any:
    return {
        "metadata": {"name": "p"},
        "spec": {
            "restartPolicy": policy,
            "nodeName": "n",
            "initContainers": [
                {"name": "proxy", "restartPolicy": "Always"},
                {"name": "fetch"},
            ],
            "containers": [{"name": "main"}],
        },
        "status": {
            "phase": phase,
            "initContainerStatuses": init,
            "containerStatuses": [{"name": "main", "state": {"waiting": _INITIALIZING}}],
        },
    }


RUNNING = {"running": {"startedAt": "t"}}


def test_reducer_waits_while_init_containers_run() -> None:
    """A running init container and a running sidecar: the run is scheduled, not failed."""
    state = reduce(_pod([{"name": "proxy", "state": RUNNING}, {"name": "fetch", "state": RUNNING}]))
    assert (state.phase, state.reason, state.detail) == (Phase.SCHEDULED, None, "PodInitializing")


def test_reducer_fails_fast_on_a_failed_init_container() -> None:
    """Exit 128 under restartPolicy Never: failed, naming the container and its exit code."""
    failed = {"terminated": {"exitCode": 128, "reason": "Error"}}
    init = [{"name": "proxy", "state": RUNNING}, {"name": "fetch", "state": failed}]
    state = reduce(_pod(init, phase="Failed"))
    assert (state.phase, state.reason) == (Phase.FAILED, Reason.INIT_CONTAINER_FAILED)
    assert (state.init_container, state.init_exit_code, state.exit_code) == ("fetch", 128, None)
    assert not state.container_ran


def test_reducer_crash_loop_and_image_pull_of_init_containers() -> None:
    """CrashLoopBackOff (OnFailure) and an unpullable image fail fast too."""
    loop = {
        "name": "fetch",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}},
    }
    state = reduce(_pod([{"name": "proxy", "state": RUNNING}, loop], policy="OnFailure"))
    assert (state.reason, state.init_container, state.init_exit_code) == (
        Reason.INIT_CONTAINER_FAILED,
        "fetch",
        2,
    )
    pull = {"name": "proxy", "state": {"waiting": {"reason": "ErrImagePull", "message": "nf"}}}
    state = reduce(_pod([pull]))
    assert (state.reason, state.init_container) == (Reason.IMAGE_PULL_ERROR, "proxy")


def test_reducer_ignores_init_statuses_once_main_started_or_when_deleting() -> None:
    """A sidecar stopped after the main container, or killed by a delete, decides nothing."""
    stopped = {"name": "proxy", "state": {"terminated": {"exitCode": 143, "reason": "Error"}}}
    done = _pod([stopped, {"name": "fetch", "state": {"terminated": {"exitCode": 0}}}])
    done["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0}}
    done["status"]["phase"] = "Succeeded"
    assert reduce(done).reason is Reason.COMPLETED
    killed = _pod([{"name": "fetch", "state": {"terminated": {"exitCode": 137}}}], phase="Failed")
    killed["metadata"]["deletionTimestamp"] = "t"
    assert reduce(killed).reason is not Reason.INIT_CONTAINER_FAILED
    deadline = _pod([{"name": "fetch", "state": {"terminated": {"exitCode": 137}}}], phase="Failed")
    deadline["status"]["reason"] = "DeadlineExceeded"
    assert reduce(deadline).reason is Reason.DEADLINE_EXCEEDED


# -- the fake --------------------------------------------------------------------------------


def _create(cluster: FakeCluster, spec: PodSpec = SPEC) -> str:
    manifests = build_manifests(spec.with_namespace("default"))
    for obj in manifests.objects:
        cluster.backend.create(obj)
    return manifests.pod_name


def _statuses(cluster: FakeCluster, name: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    status = cluster.backend.get("Pod", "default", name)["status"]
    states = {c["name"]: c["state"] for c in status.get("initContainerStatuses", [])}
    states.update({c["name"]: c["state"] for c in status.get("containerStatuses", [])})
    conditions = {c["type"]: c for c in status["conditions"]}
    return status["phase"], states, conditions


def test_fake_runs_sidecar_then_init_then_main() -> None:
    """Sidecar, then init container, then main; the sidecar is stopped after the main one.

    Pending with Initialized False while the init container runs; each container has its own
    log and its own events.
    """
    cluster = FakeCluster()
    cluster.when(image="alpine/git:*").succeed(logs="cloned\n", after=10)
    cluster.when(image="busybox:*").succeed(logs="built\n", after=20)
    name = _create(cluster)
    cluster.advance(5)
    phase, states, conditions = _statuses(cluster, name)
    assert phase == "Pending"
    assert conditions["Initialized"]["status"] == "False"
    assert conditions["Initialized"]["message"] == "containers with incomplete status: [fetch]"
    assert "running" in states["proxy"]
    assert "running" in states["fetch"]
    assert states["main"] == {"waiting": {"reason": "PodInitializing"}}
    cluster.advance(10)
    phase, states, conditions = _statuses(cluster, name)
    assert (phase, conditions["Initialized"]["status"]) == ("Running", "True")
    assert states["fetch"]["terminated"]["exitCode"] == 0
    assert "running" in states["proxy"]
    assert "running" in states["main"]
    cluster.advance(30)
    phase, states, _ = _statuses(cluster, name)
    assert phase == "Succeeded"
    assert states["proxy"]["terminated"]["exitCode"] == 143
    log = b"".join(cluster.backend.read_log("default", name, "fetch"))
    assert log == b"cloned\n"
    events = [(e["reason"], e["involvedObject"].get("fieldPath")) for e in cluster.events(pod=name)]
    started = [path for reason, path in events if reason == "Started"]
    inits = ["spec.initContainers{proxy}", "spec.initContainers{fetch}"]
    assert started == [*inits, "spec.containers{main}"]
    assert ("Killing", "spec.initContainers{proxy}") in events


def test_fake_fails_the_pod_when_an_init_container_fails() -> None:
    """Under restartPolicy Never the pod fails; the main container never starts."""
    cluster = FakeCluster()
    cluster.when(image="alpine/git:*").fail(exit_code=128, logs="fatal: no\n", after=2)
    name = _create(cluster)
    cluster.advance(10)
    phase, states, conditions = _statuses(cluster, name)
    assert phase == "Failed"
    assert states["fetch"]["terminated"]["exitCode"] == 128
    assert states["main"] == {"waiting": {"reason": "PodInitializing"}}
    assert conditions["Initialized"]["status"] == "False"
    assert "terminated" in states["proxy"]
    assert "Started" not in [
        e["reason"] for e in cluster.events(pod=name) if "containers{main}" in str(e)
    ]


def test_fake_run_callable_sees_the_init_container() -> None:
    """A run callable is called per container, with the init container's name and argv."""
    cluster = FakeCluster()
    seen: list[tuple[str, list[str]]] = []

    def decide(ctx: Any) -> int:
        seen.append((ctx.container, ctx.argv))
        return 0

    cluster.when(image="alpine/git:*").run(decide)
    name = _create(cluster)
    cluster.advance(10)
    assert seen == [("fetch", ["git", "clone", "r", "/w"])]
    assert _statuses(cluster, name)[0] == "Succeeded"


# -- runs ------------------------------------------------------------------------------------


def test_run_succeeds_with_init_and_sidecar_and_leaves_nothing() -> None:
    """The main container's result, unaffected by the init steps; nothing left behind."""
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="built\n", after=HOUR)
    result = PodRunner(cluster.backend).run(SPEC, timeout=2 * HOUR)
    assert (result.exit_code, result.logs, result.reason) == (0, "built\n", Reason.COMPLETED)
    assert leftovers(cluster) == []


def test_init_failure_raises_promptly_with_its_logs() -> None:
    """A failing init container raises InitContainerFailed as it fails, not at the timeout."""
    cluster = FakeCluster()
    cluster.when(image="alpine/git:*").fail(exit_code=128, logs="fatal: not found\n", after=30)
    start = cluster.clock.now()
    with pytest.raises(InitContainerFailed) as err:
        PodRunner(cluster.backend).run(SPEC, timeout=HOUR)
    assert cluster.clock.now() - start < 60
    error = err.value
    assert (error.container, error.exit_code, error.logs) == ("fetch", 128, "fatal: not found\n")
    assert "init container fetch failed (exit code 128)" in str(error)
    assert "fatal: not found" in error.message
    assert error.state is not None
    assert error.state.reason is Reason.INIT_CONTAINER_FAILED
    assert "s3cret" not in str(error)
    assert leftovers(cluster) == []


def test_init_failure_names_the_line_that_says_why() -> None:
    """A tool prints its reason, then advice: the error's message carries the reason."""
    cluster = FakeCluster()
    git = (
        "Cloning into '/w'...\n"
        "fatal: could not read Username for 'https://github.com': terminal prompts disabled\n"
        "Please make sure you have the correct access rights\n"
        "and the repository exists.\n"
    )
    cluster.when(image="alpine/git:*").fail(exit_code=128, logs=git)
    with pytest.raises(InitContainerFailed) as err:
        PodRunner(cluster.backend).run(SPEC, timeout=HOUR)
    assert err.value.message.endswith("terminal prompts disabled")
    assert err.value.logs == git


def test_init_crash_loop_under_on_failure_raises_too() -> None:
    """Under restartPolicy OnFailure the kubelet restarts it; the back-off ends the run."""
    cluster = FakeCluster()
    cluster.when(image="alpine/git:*").crash_loop(exit_code=2, logs="boom\n")
    spec = SPEC.replace(restart_policy="OnFailure")
    with pytest.raises(InitContainerFailed) as err:
        PodRunner(cluster.backend).run(spec, timeout=HOUR)
    assert (err.value.container, err.value.exit_code) == ("fetch", 2)
    assert leftovers(cluster) == []


def test_unpullable_init_image_is_an_image_pull_error_naming_it() -> None:
    """The existing fail-fast errors name the init container they are about."""
    cluster = FakeCluster()
    cluster.when(image="envoyproxy/*").image_pull_error()
    with pytest.raises(ImagePullError, match="init container proxy") as err:
        PodRunner(cluster.backend).run(SPEC, timeout=HOUR)
    assert err.value.state is not None
    assert err.value.state.init_container == "proxy"
    assert leftovers(cluster) == []


def test_kept_failed_pod_keeps_its_init_log() -> None:
    """cleanup=NEVER keeps the failed pod; the init container's log stays readable."""
    cluster = FakeCluster()
    cluster.when(image="alpine/git:*").fail(exit_code=1, logs="nope\n")
    with pytest.raises(InitContainerFailed) as err:
        PodRunner(cluster.backend).run(SPEC, timeout=HOUR, cleanup=CleanupPolicy.NEVER)
    name = err.value.pod_name
    assert name is not None
    assert b"".join(cluster.backend.read_log("default", name, "fetch")) == b"nope\n"


@pytest.mark.asyncio
async def test_async_runner_raises_the_same_error() -> None:
    """AsyncPodRunner shares the core: the same typed error, the same logs, nothing left."""
    cluster = FakeCluster()
    cluster.when(image="alpine/git:*").fail(exit_code=128, logs="fatal: async\n", after=5)
    runner = AsyncPodRunner(cluster.async_backend)
    with pytest.raises(InitContainerFailed) as err:
        await runner.run(SPEC, timeout=HOUR)
    assert (err.value.container, err.value.exit_code, err.value.logs) == (
        "fetch",
        128,
        "fatal: async\n",
    )
    assert leftovers(cluster) == []
    cluster.when(image="alpine/git:*").succeed()
    cluster.when(image="busybox:*").succeed(logs="ok\n", after=10)
    result = await runner.run(SPEC, timeout=HOUR)
    assert (result.exit_code, result.logs) == (0, "ok\n")


def test_core_reads_the_failed_init_log_then_the_events_then_fails() -> None:
    """The sans-I/O core: ReadInitLog, ListEvents, then the typed error with that log."""
    from podrunner.backends.base import WatchEvent
    from podrunner.run.core import Fail, ListEvents, ReadInitLog, RunCore
    from podrunner.run.outcome import RunIdentity
    from podrunner.spec import Deadlines

    run = RunCore(
        RunIdentity("p", "ns", "r1", "main"),
        deadlines=Deadlines(total=HOUR),
        cleanup=CleanupPolicy.ALWAYS,
        created_at=0.0,
    )
    failed = {"terminated": {"exitCode": 128, "reason": "Error"}}
    run.pod_event(WatchEvent("MODIFIED", _pod([{"name": "fetch", "state": failed}])), 1.0)
    assert run.next_action(1.0) == ReadInitLog("fetch")
    run.init_log_read("fatal: x\n")
    assert run.next_action(1.0) == ListEvents()
    run.events_listed(["Started: Started container fetch"])
    action = run.next_action(1.0)
    assert isinstance(action, Fail)
    assert isinstance(action.error, InitContainerFailed)
    assert (action.error.logs, action.error.events) == (
        "fatal: x\n",
        ("Started: Started container fetch",),
    )


def test_local_runtime_runs_init_steps_as_processes() -> None:
    """The local runtime runs the init container first, as a process, on the shared volume.

    The sidecar's process is stopped when the main one ends.
    """
    cluster = FakeCluster(runtime="local")
    spec = PodSpec(
        "img",
        ["cat", "/w/f"],
        volumes=[Volume.empty_dir("/w")],
        init_containers=[
            InitContainer("fetch", image="x", command=["sh", "-c", 'echo fetched > "$0"', "/w/f"])
        ],
        sidecars=[Sidecar("proxy", image="x", command=["sleep", "30"])],
    )
    result = PodRunner(cluster.backend).run(spec, timeout=60)
    assert (result.exit_code, result.logs) == (0, "fetched\n")
    failing = InitContainer("fetch", image="x", command=["sh", "-c", "echo no; exit 3"])
    with pytest.raises(InitContainerFailed) as err:
        PodRunner(cluster.backend).run(spec.replace(init_containers=[failing]), timeout=60)
    assert (err.value.exit_code, err.value.logs) == (3, "no\n")
    assert leftovers(cluster) == []
