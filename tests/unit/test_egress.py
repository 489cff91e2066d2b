"""Egress control: EgressPolicy's validation, its NetworkPolicy, and runs that create one.

A run with an egress policy creates a NetworkPolicy selecting exactly its pod, before the pod,
makes the pod its owner, and leaves none behind: not after a run, and not when any step of the
creation fails.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podrunner import (
    AsyncPodRunner,
    CleanupPolicy,
    EgressPolicy,
    EgressPort,
    EgressRule,
    PodRunner,
    PodSpec,
    build_manifests,
)
from podrunner.errors import BackendError, BackendUnavailable, Invalid, ServerError, SpecError
from podrunner.manifest import MANAGED_BY_LABEL, RUN_ID_LABEL, egress_name_for
from podrunner.testing import FakeCluster
from podrunner.testing.assertions import leftovers

SPEC = PodSpec("busybox:1.36", ["sh", "-c", "work"])
DENY = EgressPolicy.deny_all()
DNS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


# -- the value types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field", "rule"),
    [
        (lambda: EgressPolicy.allow(["10.0.0.1/8"]), "egress.cidrs[0]", "bits set past the prefix"),
        (lambda: EgressPolicy.allow(["010.0.0.0/8"]), "egress.cidrs[0]", "without leading zeros"),
        (lambda: EgressPolicy.allow(["example.com"]), "egress.cidrs[0]", "an IP address or a CIDR"),
        (lambda: EgressPolicy.allow(["10.0.0.0/33"]), "egress.cidrs[0]", "an IP address or a CIDR"),
        (lambda: EgressPolicy.allow(["::ffff:10.0.0.0/104"]), "egress.cidrs[0]", "IPv4-mapped"),
        (lambda: EgressPolicy.allow("10.0.0.0/8"), "egress.cidrs", "not a single string"),
        (lambda: EgressPolicy.allow(ports=[0]), "egress.ports[0]", "between 1 and 65535"),
        (lambda: EgressPolicy.allow(ports=[65536]), "egress.ports[0]", "between 1 and 65535"),
        (lambda: EgressPolicy.allow(ports=["443"]), "egress.ports[0]", "a port number"),
        (lambda: EgressPolicy.allow(ports=[True]), "egress.ports[0]", "a port number"),
        (lambda: EgressPort(53, "ICMP"), "egress.protocol", "'TCP', 'UDP', 'SCTP'"),
        (lambda: EgressPort(8000, end_port=7999), "egress.end_port", "at least port (8000)"),
        (lambda: EgressPort(8000, end_port=70000), "egress.end_port", "between 1 and 65535"),
        (lambda: EgressPolicy.allow(), "egress", "would allow all egress"),
        (
            lambda: EgressPolicy.allow(["10.0.0.0/8"], except_cidrs=["10.0.0.0/8"]),
            "egress.except_cidrs[0]",
            "strictly inside",
        ),
        (
            lambda: EgressPolicy.allow(["10.0.0.0/8"], except_cidrs=["::/64"]),
            "egress.except_cidrs[0]",
            "strictly inside",
        ),
        (lambda: EgressRule(pods={"bad key!": "x"}), "egress.pods", "name part"),
        (lambda: EgressRule(pods={"app": "bad value!"}), "egress.pods[app]", "a valid label"),
        (lambda: EgressRule(namespace="Not_A_Name"), "egress.namespace", "RFC 1123"),
        (lambda: EgressPolicy("not rules"), "egress.rules", "a sequence of EgressRule"),  # type: ignore[arg-type]
        (lambda: EgressPolicy([443]), "egress.rules[0]", "must be an EgressRule"),  # type: ignore[list-item]
        (lambda: EgressPolicy(dns="yes"), "egress.dns", "True or False"),  # type: ignore[arg-type]
        (lambda: PodSpec("busybox", ["true"], egress="deny"), "egress", "an EgressPolicy"),  # type: ignore[arg-type]
    ],
)
def test_bad_values_name_field_value_and_rule(make: Any, field: str, rule: str) -> None:
    """Every refusal happens at construction, naming the field and the rule broken."""
    with pytest.raises(SpecError) as info:
        make()
    assert info.value.field == field
    assert rule in info.value.rule


def test_addresses_and_protocols_are_written_canonically() -> None:
    """A single address becomes a /32 or /128; protocols are upper case; IPv6 is lower case."""
    rule = EgressRule(["10.1.2.3", "2001:DB8::1", "192.168.0.0/16"], [EgressPort(53, "udp")])
    assert rule.cidrs == ("10.1.2.3/32", "2001:db8::1/128", "192.168.0.0/16")
    assert rule.ports == (EgressPort(53, "UDP"),)
    assert EgressRule(rule.cidrs, rule.ports) == rule  # converting twice changes nothing


def test_each_constructor_builds_its_networkpolicy_spec() -> None:
    """deny_all, dns_only, allow and proxy_only, as NetworkPolicy JSON."""
    sel = {"matchLabels": {"run": "x"}}
    base = {"podSelector": sel, "policyTypes": ["Egress"]}
    assert DENY.to_manifest({"run": "x"}) == base
    assert EgressPolicy.dns_only().to_manifest({"run": "x"}) == {**base, "egress": [{"ports": DNS}]}
    allow = EgressPolicy.allow(
        ["0.0.0.0/0"], [443, EgressPort(8000, end_port=9000)], except_cidrs=["10.0.0.0/8"]
    )
    assert allow.to_manifest({"run": "x"})["egress"] == [
        {"ports": DNS},
        {
            "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
            "ports": [
                {"protocol": "TCP", "port": 443},
                {"protocol": "TCP", "port": 8000, "endPort": 9000},
            ],
        },
    ]
    proxy = EgressPolicy.proxy_only("192.168.1.10", 3128)
    assert proxy.to_manifest({"run": "x"})["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "192.168.1.10/32"}}],
            "ports": [{"protocol": "TCP", "port": 3128}],
        }
    ]
    pods = EgressPolicy([EgressRule(ports=[3128], pods={"app": "squid"}, namespace="proxy")])
    assert pods.to_manifest({"run": "x"})["egress"][1] == {
        "to": [
            {
                "podSelector": {"matchLabels": {"app": "squid"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "proxy"}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 3128}],
    }


def test_an_except_goes_to_each_cidr_containing_it() -> None:
    """Excepts are carved from the CIDRs that hold them, so the server accepts every block."""
    rule = EgressRule(["10.0.0.0/8", "172.16.0.0/12"], except_cidrs=["10.1.0.0/16"])
    assert rule.to_manifest()["to"] == [
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
        {"ipBlock": {"cidr": "172.16.0.0/12"}},
    ]


# -- manifests ------------------------------------------------------------------------------------


def test_the_policy_selects_the_run_by_its_labels_and_comes_first() -> None:
    """The NetworkPolicy is ``<pod>-egress``, labelled like the pod, selecting its run id."""
    built = build_manifests(SPEC.with_egress(DENY).with_secret_env(TOKEN="t"), run_id="r1")
    policy = built.network_policy
    assert policy is not None
    assert policy["metadata"]["name"] == egress_name_for(built.pod_name)
    assert policy["metadata"]["labels"] == built.pod["metadata"]["labels"]
    assert policy["spec"]["podSelector"] == {
        "matchLabels": {MANAGED_BY_LABEL: "podrunner", RUN_ID_LABEL: "r1"}
    }
    assert [m["kind"] for m in built.objects] == ["NetworkPolicy", "Secret", "Pod"]


def test_a_runner_default_applies_only_to_specs_without_a_policy() -> None:
    """``egress=`` of build_manifests (a runner's default) yields to the spec's own."""
    assert build_manifests(SPEC).network_policy is None
    dns_only = EgressPolicy.dns_only()
    default = build_manifests(SPEC, egress=dns_only).network_policy
    assert default is not None
    assert default["spec"]["egress"] == [{"ports": DNS}]
    own = build_manifests(SPEC.with_egress(DENY), egress=dns_only).network_policy
    assert own is not None
    assert "egress" not in own["spec"]


# -- runs on the fake -----------------------------------------------------------------------------


def cluster_for(**behaviour: Any) -> FakeCluster:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="ok\n", after=2.0, **behaviour)
    return cluster


def test_a_run_creates_the_policy_first_owned_by_its_pod_and_deletes_it() -> None:
    cluster = cluster_for()
    seen: list[dict[str, Any]] = []
    pod_uids: set[str] = set()

    def on_state(_: object) -> None:
        seen.extend(cluster.network_policies())
        pod_uids.update(p["metadata"]["uid"] for p in cluster.pods())

    result = PodRunner(cluster.backend).run(SPEC.with_egress(DENY), on_state=on_state)
    assert result.exit_code == 0
    creates = [a.kind for a in cluster.actions if a.verb == "create"]
    assert creates == ["NetworkPolicy", "Pod"]
    assert len(pod_uids) == 1
    owners = {(r["kind"], r["uid"]) for p in seen for r in p["metadata"]["ownerReferences"]}
    assert owners == {("Pod", *pod_uids)}
    assert cluster.network_policies() == []


def test_kept_pods_keep_their_policy_until_collected_with_them() -> None:
    cluster = cluster_for()
    runner = PodRunner(cluster.backend, egress=DENY)
    result = runner.run(SPEC, cleanup=CleanupPolicy.NEVER)
    (policy,) = cluster.network_policies()
    assert policy["metadata"]["name"] == f"{result.pod_name}-egress"
    cluster.backend.delete("Pod", "default", result.pod_name, grace_period_seconds=0)
    cluster.clock.advance(1.0)
    assert cluster.network_policies() == []


def test_reap_deletes_expired_policies_and_skips_them_when_forbidden() -> None:
    cluster = cluster_for()
    runner = PodRunner(cluster.backend, egress=DENY, default_ttl=60.0)
    built = build_manifests(SPEC, egress=DENY)
    assert built.network_policy is not None
    cluster.backend.create(built.network_policy)  # a policy whose pod was never created
    assert runner.reap(older_than=0.0).deleted == (
        ("NetworkPolicy", "default", egress_name_for(built.pod_name)),
    )
    cluster.fault(verb="list", kind="NetworkPolicy", status=403)
    report = runner.reap(older_than=0.0)
    assert (report.deleted, report.skipped) == ((), ("NetworkPolicy",))


def test_leftovers_names_a_policy_left_behind() -> None:
    cluster = cluster_for()
    built = build_manifests(SPEC, egress=DENY)
    assert built.network_policy is not None
    cluster.backend.create(built.network_policy)
    assert leftovers(cluster) == [f"NetworkPolicy default/{built.pod_name}-egress"]
    assert leftovers(cluster.backend, "default") == leftovers(cluster)


class LostAnswer:
    """A backend whose NetworkPolicy create lands, but whose answer is lost."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def create(self, manifest: Any, **kw: Any) -> Any:
        stored = self._backend.create(manifest, **kw)
        if manifest.get("kind") == "NetworkPolicy" and not self.lost:
            self.lost += 1
            raise BackendUnavailable("connection reset after the write")
        return stored


class Interrupting:
    """A backend that raises KeyboardInterrupt at the first call of one verb on one kind."""

    def __init__(self, backend: Any, verb: str, kind: str) -> None:
        self._backend = backend
        self._target = (verb, kind)
        self.fired = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def _hit(self, verb: str, kind: str) -> None:
        if not self.fired and (verb, kind) == self._target:
            self.fired = True
            raise KeyboardInterrupt

    def create(self, manifest: Any, **kw: Any) -> Any:
        self._hit("create", manifest.get("kind"))
        return self._backend.create(manifest, **kw)

    def patch(self, kind: Any, *args: Any, **kw: Any) -> Any:
        self._hit("patch", kind)
        return self._backend.patch(kind, *args, **kw)


FAULTS = [
    pytest.param("create", "NetworkPolicy", {"status": 500}, ServerError, id="create-policy-500"),
    pytest.param("create", "NetworkPolicy", {"status": 422}, BackendError, id="create-policy-422"),
    pytest.param("create", "Secret", {"status": 500}, ServerError, id="create-secret-500"),
    pytest.param("create", "Pod", {"status": 500}, ServerError, id="create-pod-500"),
    pytest.param("create", "Pod", {"connection_error": True}, BackendUnavailable, id="pod-conn"),
    pytest.param("patch", "NetworkPolicy", {"status": 500}, ServerError, id="patch-policy-500"),
    pytest.param("patch", "Secret", {"status": 500}, ServerError, id="patch-secret-500"),
    pytest.param("watch", "Pod", {"status": 500}, ServerError, id="watch-500"),
]


@pytest.mark.parametrize(("verb", "kind", "fault", "error"), FAULTS)
def test_every_failed_step_leaves_no_policy(
    verb: str, kind: str, fault: dict[str, Any], error: type[Exception]
) -> None:
    """Whichever call fails (every attempt), the run's objects are all deleted."""
    cluster = cluster_for()
    cluster.fault(verb=verb, kind=kind, **fault)
    spec = SPEC.with_egress(DENY).with_secret_env(TOKEN="t")
    with pytest.raises(error):
        PodRunner(cluster.backend).run(spec, timeout=600)
    assert cluster.network_policies() == []
    assert leftovers(cluster) == []


def test_a_pod_the_server_refuses_leaves_no_policy() -> None:
    """A pod create the server refuses (422) ends the run with the policy deleted."""
    cluster = cluster_for()
    cluster.fault(verb="create", kind="Pod", status=422, reason="Invalid")
    with pytest.raises(Invalid):
        PodRunner(cluster.backend, egress=DENY).run(SPEC)
    assert cluster.network_policies() == []


@pytest.mark.parametrize(
    ("verb", "kind"), [("create", "NetworkPolicy"), ("create", "Pod"), ("patch", "NetworkPolicy")]
)
def test_ctrl_c_at_any_creation_step_leaves_no_policy(verb: str, kind: str) -> None:
    cluster = cluster_for()
    backend = Interrupting(cluster.backend, verb, kind)
    with pytest.raises(KeyboardInterrupt):
        PodRunner(backend, egress=DENY).run(SPEC)  # type: ignore[arg-type]
    assert backend.fired
    assert cluster.network_policies() == []
    assert leftovers(cluster) == []


def test_a_policy_whose_create_answer_was_lost_is_found_and_deleted() -> None:
    """The create landed but its answer did not: the retry finds it; nothing is left."""
    cluster = cluster_for()
    backend = LostAnswer(cluster.backend)
    result = PodRunner(backend, egress=DENY).run(SPEC)  # type: ignore[arg-type]
    assert (backend.lost, result.exit_code) == (1, 0)
    assert cluster.network_policies() == []


def test_the_async_runner_creates_owns_and_deletes_the_policy() -> None:
    cluster = cluster_for()
    owned: list[list[dict[str, Any]]] = []

    async def main() -> None:
        runner = AsyncPodRunner(cluster.async_backend, egress=EgressPolicy.dns_only())
        async with runner:
            result = await runner.run(
                SPEC, on_state=lambda _: owned.append(cluster.network_policies())
            )
        assert result.exit_code == 0

    asyncio.run(main())
    assert [p["metadata"]["ownerReferences"][0]["kind"] for p in owned[-1]] == ["Pod"]
    assert [a.kind for a in cluster.actions if a.verb == "create"] == ["NetworkPolicy", "Pod"]
    assert cluster.network_policies() == []


def test_the_async_runner_leaves_no_policy_when_the_pod_create_fails() -> None:
    cluster = cluster_for()
    cluster.fault(verb="create", kind="Pod", status=500)

    async def main() -> None:
        async with AsyncPodRunner(cluster.async_backend) as runner:
            await runner.run(SPEC.with_egress(DENY), timeout=600)

    with pytest.raises(ServerError):
        asyncio.run(main())
    assert cluster.network_policies() == []


def test_a_runner_refuses_a_default_that_is_not_a_policy() -> None:
    with pytest.raises(TypeError, match="EgressPolicy"):
        PodRunner(FakeCluster().backend, egress="deny")  # type: ignore[arg-type]


def test_leftovers_names_a_config_map_left_behind_but_not_the_namespaces_own() -> None:
    """A run's files ConfigMap is a leftover; a ConfigMap podrunner did not make is not."""
    cluster = cluster_for()
    built = build_manifests(SPEC.replace(files={"/in/task.txt": "do it"}))
    assert built.config_map is not None
    cluster.backend.create(built.config_map)
    # The namespace's own kube-root-ca.crt is there, as on a real cluster.
    assert cluster.backend.get("ConfigMap", "default", "kube-root-ca.crt")
    assert leftovers(cluster) == [f"ConfigMap default/{built.config_map['metadata']['name']}"]
    assert leftovers(cluster.backend, "default") == leftovers(cluster)
