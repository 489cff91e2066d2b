"""Generated NetworkPolicies: the fake answers as the real server, which accepts podrunner's.

Real servers only (the fake is what is being checked). Each property runs 500 examples, half
or more of them invalid somewhere: CIDRs with host bits, leading zeros, IPv4-mapped or junk,
ports out of range or named, unknown protocols, label selectors with bad keys and operators.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from podrunner import EgressPolicy, EgressPort, EgressRule, PodSpec, build_manifests
from podrunner.errors import BackendError, SpecError
from podrunner.testing import FakeCluster

if TYPE_CHECKING:
    from conftest import Kit

pytestmark = pytest.mark.integration

OCTETS = ["0", "1", "10", "010", "00", "127", "255", "256", "192", "168"]
V4_PREFIXES = ["", "/0", "/8", "/08", "/16", "/24", "/31", "/32", "/33", "/x"]
V6 = ["::", "2001:db8::", "2001:DB8::1", "::ffff:10.0.0.0", "fe80::1", "2001:db8::/", "::1:2:3"]
V6_PREFIXES = ["", "/0", "/32", "/64", "/104", "/128", "/129"]
JUNK = ["", "x", " 10.0.0.0/8", "10.0.0.0/8 ", "10.0.0/8", "1.2.3.4.5/8"]

v4 = st.builds(
    lambda octets, prefix: ".".join(octets) + prefix,
    st.lists(st.sampled_from(OCTETS), min_size=4, max_size=4),
    st.sampled_from(V4_PREFIXES),
)
v6 = st.builds(lambda a, p: a + p, st.sampled_from(V6), st.sampled_from(V6_PREFIXES))
cidrs = st.one_of(v4, v4, v6, st.sampled_from(JUNK))
port_numbers = st.sampled_from([-1, 0, 1, 53, 443, 8000, 65535, 65536])
port_names = st.sampled_from(["http", "53", "", "Bad_Name", "a--b", "-a", "abcdefghijklmnop"])
protocols = st.sampled_from(["TCP", "UDP", "SCTP", "tcp", "ICMP", ""])
label_keys = st.sampled_from(["app", "x.example.com/k", "bad key", "", "a/b/c"])
label_values = st.sampled_from(["a", "", "bad value!", "b-1"])
operators = st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "in"])


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


ports = st.builds(
    _drop_none,
    st.fixed_dictionaries(
        {
            "protocol": st.one_of(st.none(), protocols),
            "port": st.one_of(st.none(), port_numbers, port_names),
            "endPort": st.one_of(st.none(), port_numbers),
        }
    ),
)
expressions = st.builds(
    _drop_none,
    st.fixed_dictionaries(
        {
            "key": label_keys,
            "operator": operators,
            "values": st.one_of(st.none(), st.lists(label_values, max_size=2)),
        }
    ),
)
selectors = st.builds(
    _drop_none,
    st.fixed_dictionaries(
        {
            "matchLabels": st.one_of(
                st.none(), st.dictionaries(label_keys, label_values, max_size=2)
            ),
            "matchExpressions": st.one_of(st.none(), st.lists(expressions, max_size=2)),
        }
    ),
)
ip_blocks = st.builds(
    lambda cidr, excepts: {"cidr": cidr, **({"except": excepts} if excepts else {})},
    cidrs,
    st.lists(cidrs, max_size=2),
)
peers = st.one_of(
    st.builds(lambda b: {"ipBlock": b}, ip_blocks),
    st.builds(lambda b: {"ipBlock": b}, ip_blocks),
    st.builds(
        _drop_none,
        st.fixed_dictionaries(
            {
                "podSelector": st.one_of(st.none(), selectors),
                "namespaceSelector": st.one_of(st.none(), selectors),
                "ipBlock": st.one_of(st.none(), st.none(), ip_blocks),
            }
        ),
    ),
)
rules = st.builds(
    _drop_none,
    st.fixed_dictionaries(
        {
            "to": st.one_of(st.none(), st.lists(peers, max_size=3)),
            "ports": st.one_of(st.none(), st.lists(ports, max_size=3)),
        }
    ),
)
policy_specs = st.builds(
    _drop_none,
    st.fixed_dictionaries(
        {
            "podSelector": st.one_of(st.none(), selectors),
            "policyTypes": st.one_of(
                st.none(), st.lists(st.sampled_from(["Ingress", "Egress", "egress"]), max_size=3)
            ),
            "egress": st.one_of(st.none(), st.lists(rules, max_size=2)),
        }
    ),
)

SETTINGS = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def real_kit(kit: Kit) -> Kit:
    """The kit, on a real API server only."""
    if kit.is_fake:
        pytest.skip("compares the fake (or podrunner) with a real API server")
    return kit


def outcome(backend: Any, namespace: str, spec: dict[str, Any]) -> tuple[Any, ...]:
    """A dry-run create's answer: the stored spec, or the status and the 422 causes."""
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "np", "namespace": namespace},
        "spec": copy.deepcopy(spec),
    }
    try:
        return ("stored", backend.create(body, dry_run=True)["spec"])
    except BackendError as exc:
        # Sorted: the server walks a label map in Go's random order, so causes of two keys of
        # one matchLabels come in either order.
        causes = sorted((c.field, c.reason, c.message) for c in getattr(exc, "causes", None) or ())
        return (exc.status, causes)


@SETTINGS
@given(spec=policy_specs)
# Go turns an IPv4-mapped address into IPv4 before the subset test: outside an IPv6 network,
# inside an IPv4 one (found by this test on random traffic).
@example(
    spec={"egress": [{"to": [{"ipBlock": {"cidr": "::/0", "except": ["::ffff:10.0.0.0/104"]}}]}]}
)
@example(
    spec={
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["::ffff:10.1.0.0/112"]}}]}]
    }
)
def test_the_fake_answers_generated_policies_as_the_server(
    real_kit: Kit, spec: dict[str, Any]
) -> None:
    """Same stored object, or same status with the same causes."""
    fake = FakeCluster()
    try:
        ours = outcome(fake.backend, "default", spec)
    finally:
        fake.backend.close()
    theirs = outcome(real_kit.backend, real_kit.namespace, spec)
    event("stored" if theirs[0] == "stored" else f"refused {theirs[0]}")
    assert ours == theirs, spec


VALID_CIDRS = ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "192.168.1.7", "2001:db8::/32", "::/0"]
egress_cidrs = st.one_of(st.sampled_from(VALID_CIDRS), st.sampled_from(VALID_CIDRS), cidrs)
egress_excepts = st.one_of(
    st.just([]),
    st.lists(st.sampled_from(["10.1.0.0/16", "10.1.2.0/24", "2001:db8::/64"]), max_size=1),
    st.lists(cidrs, max_size=1),
)
egress_ports = st.one_of(
    st.sampled_from([53, 443, 8080]),
    port_numbers,
    st.builds(
        lambda port, protocol, end: (port, protocol, end),
        port_numbers,
        protocols,
        st.one_of(st.none(), port_numbers),
    ),
)


def build_policy(raw: dict[str, Any]) -> EgressPolicy | None:
    """The EgressPolicy of the raw values, or ``None`` when podrunner refuses them."""
    try:
        ports = [
            EgressPort(p[0], p[1], end_port=p[2]) if isinstance(p, tuple) else p
            for p in raw["ports"]
        ]
        rule = EgressRule(raw["cidrs"], ports, except_cidrs=raw["excepts"])
        return EgressPolicy([rule], dns=raw["dns"])
    except SpecError:
        return None


@SETTINGS
@given(
    raw=st.fixed_dictionaries(
        {
            "cidrs": st.lists(egress_cidrs, max_size=2),
            "excepts": egress_excepts,
            "ports": st.lists(egress_ports, max_size=2),
            "dns": st.booleans(),
        }
    )
)
def test_what_podrunner_accepts_the_server_accepts(real_kit: Kit, raw: dict[str, Any]) -> None:
    """An EgressPolicy podrunner builds is never refused by the server (no 422 after the fact)."""
    policy = build_policy(raw)
    event("podrunner refused" if policy is None else "podrunner accepted")
    if policy is None:
        return
    spec = PodSpec("busybox:1.36", ["true"], namespace=real_kit.namespace, egress=policy)
    manifest = build_manifests(spec).network_policy
    assert manifest is not None
    stored = real_kit.backend.create(manifest, dry_run=True)
    assert stored["spec"] == manifest["spec"]
