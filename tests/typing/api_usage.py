"""Typing example of the spec and manifest API; checked by ``mypy --strict``, never run."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from podrunner import (
    Backend,
    CleanupPolicy,
    ClusterConfig,
    ConfigError,
    Deadlines,
    EgressPolicy,
    EgressPort,
    EgressRule,
    EnvVar,
    ImagePullPolicy,
    Manifests,
    Phase,
    PodRunner,
    PodSpec,
    ReapReport,
    Reason,
    Resources,
    RetryingBackend,
    RetryPolicy,
    RunResult,
    SecretRef,
    SecurityProfile,
    SpecError,
    Volume,
    build_credentials_prefix,
    build_manifests,
    build_pod_manifest,
    generate_pod_name,
)
from podrunner._validation import parse_quantity, quantity_error
from podrunner.claude import ClaudeRunner, ClaudeTask
from podrunner.manifest import MANAGED_SELECTOR, owner_reference
from podrunner.manifest.naming import new_run_id, sanitize_label_value


def build() -> PodSpec:
    spec = PodSpec(
        "busybox:1.36",
        ["sh", "-c", "echo hi"],
        name_prefix="demo",
        resources=Resources(cpu_limit="500m", memory_limit="512Mi", cpu_request=0.1),
        image_pull_policy=ImagePullPolicy.ALWAYS,
        env={"FOO": "bar"},
        blank_env=["CLAUDECODE"],
        secret_env={"TOKEN": "x", "KEY": SecretRef("creds", "key")},
        secret_files={"/home/u/.claude/.credentials.json": "{}"},
        labels={"team": "ml"},
        volumes=[Volume.empty_dir("/scratch", size_limit="1Gi"), Volume.pvc("claim", "/data")],
        security=SecurityProfile.RESTRICTED,
        active_deadline_seconds=600,
    )
    spec = spec.with_labels(env="dev").with_env(A="1").with_resources(memory_request="128Mi")
    spec = spec.with_env_vars(EnvVar("B", secret_ref=SecretRef("s", "k")))
    egress = EgressPolicy.allow(["0.0.0.0/0"], [443, EgressPort(53, "UDP")], except_cidrs=[])
    rule = EgressRule(ports=[EgressPort(8000, end_port=8100)], pods={"app": "p"}, namespace="n")
    spec = spec.with_egress(EgressPolicy([rule], dns=False)).with_egress(egress)
    spec = spec.with_egress(EgressPolicy.proxy_only("10.0.0.1", 3128)).with_egress(None)
    return spec.with_volumes(Volume.config_map("cm", "/etc/cm")).with_command("true")


def manifests() -> None:
    spec = build()
    m: Manifests = build_manifests(spec, run_id=new_run_id())
    pod: dict[str, Any] = m.pod
    secret: dict[str, Any] | None = m.secret
    policy: dict[str, Any] | None = build_manifests(
        spec, egress=EgressPolicy.deny_all()
    ).network_policy
    name: str = m.pod_name
    objects: list[dict[str, Any]] = m.objects
    only_pod: dict[str, Any] = build_pod_manifest(spec, name=generate_pod_name("x"))
    ref: dict[str, Any] = owner_reference(pod)
    prefix: str = build_credentials_prefix(None) + build_credentials_prefix("{}")
    selector: str = MANAGED_SELECTOR
    label: str = sanitize_label_value("feature/x")
    del secret, policy, name, objects, only_pod, ref, prefix, selector, label


def config() -> str:
    try:
        cfg = ClusterConfig.from_kubeconfig_file("~/.kube/config", context="dev")
    except ConfigError:
        cfg = ClusterConfig.in_cluster()
    return cfg.namespace


def errors() -> str | None:
    try:
        Resources(cpu_limit="lots")
    except SpecError as exc:
        field: str = exc.field
        rule: str = exc.rule
        return field + rule
    value = parse_quantity("1.5Gi") + Decimal(1)  # Decimal arithmetic type-checks
    del value
    return quantity_error("1Ki")


policy: CleanupPolicy = CleanupPolicy.ON_SUCCESS
deadlines = Deadlines(scheduling=30, start=120.0, total=None)
total: float | None = deadlines.total


def engine(backend: Backend) -> tuple[Phase | None, Reason | None]:
    """A RetryingBackend is a Backend: it wraps any backend and goes wherever one goes."""
    retrying: Backend = RetryingBackend(backend, RetryPolicy(attempts=3))
    runner = PodRunner(retrying)
    result: RunResult = runner.run(PodSpec("busybox:1.36", ["true"]).with_files({"/in/a": "x"}))
    report: ReapReport = runner.reap()
    del report
    return result.state.phase, result.reason


def claude_events(pods: PodRunner) -> list[str]:
    """ClaudeRunner.stream() yields plain dicts, and contextlib.closing() takes the stream."""
    claude = ClaudeRunner(pods, image="example.com/claude-code:2")
    task = ClaudeTask("hi", output_format="stream-json", include_partial_messages=True)
    with contextlib.closing(claude.stream(task, timeout=60)) as events:
        return [str(event["type"]) for event in events]


def warm_pool(runner: PodRunner) -> tuple[int | None, str]:
    """PodPool is a context manager; run() gives a RunResult, claim() a ClaimedPod."""
    from podrunner import ClaimedPod, PodPool

    with PodPool(runner, PodSpec("busybox:1.36", ["x"]), size=2, recycle=True) as pool:
        result: RunResult = pool.run(["echo", "hi"], timeout=30, stdin="in")
        with pool.claim(timeout=10) as pod:
            held: ClaimedPod = pod
        return result.exit_code, held.name
