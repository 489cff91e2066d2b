"""Contract: NetworkPolicy (networking.k8s.io/v1) is stored, defaulted, refused, collected.

The expected causes are the server's own (kube-apiserver 1.36, strict CIDR validation on):
field path, reason and message, in order. The fake must answer the same.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest

from podrunner import EgressPolicy, EgressPort, EgressRule, PodSpec, build_manifests
from podrunner.errors import BadRequest, Invalid, NotFound

if TYPE_CHECKING:
    from conftest import Kit

CIDR_RULE = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def policy(kit: Kit, spec: dict[str, Any] | None, name: str = "np") -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": kit.namespace},
    }
    if spec is not None:
        body["spec"] = spec
    return body


def egress_to(*peers: dict[str, Any]) -> dict[str, Any]:
    return {"policyTypes": ["Egress"], "egress": [{"to": list(peers)}]}


def block(cidr: str, *excepts: str) -> dict[str, Any]:
    ip_block: dict[str, Any] = {"cidr": cidr}
    if excepts:
        ip_block["except"] = list(excepts)
    return {"ipBlock": ip_block}


def test_create_defaults_and_stores_a_policy(kit: Kit) -> None:
    """Defaults: podSelector {}, a port's protocol TCP, policyTypes from the rules present."""
    spec = {"podSelector": {"matchLabels": {"a": "b"}}, "egress": [{"ports": [{"port": 53}]}]}
    stored = kit.backend.create(policy(kit, spec))
    assert stored["apiVersion"] == "networking.k8s.io/v1"
    assert stored["metadata"]["generation"] == 1
    assert stored["spec"] == {
        "podSelector": {"matchLabels": {"a": "b"}},
        "egress": [{"ports": [{"protocol": "TCP", "port": 53}]}],
        "policyTypes": ["Ingress", "Egress"],
    }
    assert kit.backend.get("NetworkPolicy", kit.namespace, "np") == stored
    listed = kit.backend.list("NetworkPolicy", kit.namespace).items
    assert [(o["kind"], o["apiVersion"], o["metadata"]["name"]) for o in listed] == [
        ("NetworkPolicy", "networking.k8s.io/v1", "np")
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, {"podSelector": {}, "policyTypes": ["Ingress"]}),
        (
            {"podSelector": None, "policyTypes": ["Egress"], "egress": []},
            {"podSelector": {}, "policyTypes": ["Egress"]},
        ),
        (
            {
                "policyTypes": ["Egress"],
                "egress": [{"to": [], "ports": []}, {"to": [block("10.0.0.0/8")]}],
            },
            {
                "podSelector": {},
                "egress": [{}, {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
                "policyTypes": ["Egress"],
            },
        ),
        (
            {"policyTypes": ["Egress"], "egress": [{"ports": [{"protocol": "UDP"}, {}]}]},
            {
                "podSelector": {},
                "egress": [{"ports": [{"protocol": "UDP"}, {"protocol": "TCP"}]}],
                "policyTypes": ["Egress"],
            },
        ),
        (  # the server keeps an IPv6 CIDR as written, and a repeated policy type
            {"policyTypes": ["Egress", "Egress"], "egress": [{"to": [block("2001:DB8::/32")]}]},
            {
                "podSelector": {},
                "egress": [{"to": [{"ipBlock": {"cidr": "2001:DB8::/32"}}]}],
                "policyTypes": ["Egress", "Egress"],
            },
        ),
    ],
    ids=["no-spec", "nulls-and-empty-egress", "empty-lists", "port-protocol-only", "kept-as-is"],
)
def test_empty_fields_are_dropped_and_defaults_applied(
    kit: Kit, spec: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    """What omitempty drops and the defaults fill, in a dry run as in a create."""
    stored = kit.backend.create(policy(kit, spec), dry_run=True)
    assert stored["spec"] == expected


BITS = "must not have bits set beyond the prefix length"
ZEROS = "must not have leading 0s in IP or prefix length"
SUBSET = "must be a strict subset of `cidr`"
PORT_RANGE = "must be between 1 and 65535, inclusive"
TO0 = "spec.egress[0].to[0]"
PORTS = "spec.egress[0].ports"

INVALID = [
    (
        "host-bits",
        egress_to(block("10.0.0.1/8")),
        [(f"{TO0}.ipBlock.cidr", "FieldValueInvalid", f'Invalid value: "10.0.0.1/8": {BITS}')],
    ),
    (
        "leading-zeros",
        egress_to(block("010.0.0.0/8"), block("10.0.0.0/08")),
        [
            (f"{TO0}.ipBlock.cidr", "FieldValueInvalid", f'Invalid value: "010.0.0.0/8": {ZEROS}'),
            (
                "spec.egress[0].to[1].ipBlock.cidr",
                "FieldValueInvalid",
                f'Invalid value: "10.0.0.0/08": {ZEROS}',
            ),
        ],
    ),
    (
        "ipv4-mapped",
        egress_to(block("::ffff:10.0.0.0/104")),
        [
            (
                f"{TO0}.ipBlock.cidr",
                "FieldValueInvalid",
                'Invalid value: "::ffff:10.0.0.0/104": must not have an IPv4-mapped IPv6 address',
            )
        ],
    ),
    (
        "not-a-cidr",
        egress_to(block("nope"), block("10.0.0.1")),
        [
            (f"{TO0}.ipBlock.cidr", "FieldValueInvalid", f'Invalid value: "nope": {CIDR_RULE}'),
            (
                "spec.egress[0].to[1].ipBlock.cidr",
                "FieldValueInvalid",
                f'Invalid value: "10.0.0.1": {CIDR_RULE}',
            ),
        ],
    ),
    (
        "empty-cidr",
        egress_to(block("")),
        [(f"{TO0}.ipBlock.cidr", "FieldValueRequired", "Required value")],
    ),
    (
        "except",
        egress_to(block("10.0.0.0/8", "10.0.0.0/8", "11.0.0.0/16", "x", "10.1.0.0/16", "::/64")),
        [
            (
                f"{TO0}.ipBlock.except[0]",
                "FieldValueInvalid",
                f'Invalid value: "10.0.0.0/8": {SUBSET}',
            ),
            (
                f"{TO0}.ipBlock.except[1]",
                "FieldValueInvalid",
                f'Invalid value: "11.0.0.0/16": {SUBSET}',
            ),
            (f"{TO0}.ipBlock.except[2]", "FieldValueInvalid", f'Invalid value: "x": {CIDR_RULE}'),
            (f"{TO0}.ipBlock.except[4]", "FieldValueInvalid", f'Invalid value: "::/64": {SUBSET}'),
        ],
    ),
    (
        "peers",
        egress_to({}, {**block("10.0.0.0/8"), "podSelector": {}}),
        [
            (TO0, "FieldValueRequired", "Required value: must specify a peer"),
            (
                "spec.egress[0].to[1]",
                "FieldValueForbidden",
                "Forbidden: may not specify both ipBlock and another peer",
            ),
        ],
    ),
    (
        "ports",
        {
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "ports": [
                        {"port": 0},
                        {"port": 70000},
                        {"protocol": "ICMP", "port": 1},
                        {"port": 10, "endPort": 5},
                        {"port": "http", "endPort": 80},
                        {"endPort": 80},
                        {"port": "Bad_Name"},
                        {"port": 10, "endPort": 70000},
                        {"protocol": "tcp"},
                        {"port": "53"},
                    ]
                }
            ],
        },
        [
            (f"{PORTS}[0].port", "FieldValueInvalid", f"Invalid value: 0: {PORT_RANGE}"),
            (f"{PORTS}[1].port", "FieldValueInvalid", f"Invalid value: 70000: {PORT_RANGE}"),
            (
                f"{PORTS}[2].protocol",
                "FieldValueNotSupported",
                'Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
            ),
            (
                f"{PORTS}[3].endPort",
                "FieldValueInvalid",
                "Invalid value: 10: must be greater than or equal to `port`",
            ),
            (
                f"{PORTS}[4].endPort",
                "FieldValueInvalid",
                "Invalid value: 80: may not be specified when `port` is non-numeric",
            ),
            (
                f"{PORTS}[5].endPort",
                "FieldValueInvalid",
                "Invalid value: 80: may not be specified when `port` is not specified",
            ),
            (
                f"{PORTS}[6].port",
                "FieldValueInvalid",
                'Invalid value: "Bad_Name": must contain only alpha-numeric characters '
                "(a-z, 0-9), and hyphens (-)",
            ),
            (f"{PORTS}[7].endPort", "FieldValueInvalid", f"Invalid value: 70000: {PORT_RANGE}"),
            (
                f"{PORTS}[8].protocol",
                "FieldValueNotSupported",
                'Unsupported value: "tcp": supported values: "TCP", "UDP", "SCTP"',
            ),
            (
                f"{PORTS}[9].port",
                "FieldValueInvalid",
                'Invalid value: "53": must contain at least one letter (a-z)',
            ),
        ],
    ),
    (
        "policy-types",
        {"policyTypes": ["Egress", "Foo"]},
        [
            (
                "spec.policyTypes[1]",
                "FieldValueNotSupported",
                'Unsupported value: "Foo": supported values: "Ingress", "Egress"',
            )
        ],
    ),
    (
        "three-policy-types",
        {"policyTypes": ["Egress", "Ingress", "Egress"]},
        [
            (
                "spec.policyTypes",
                "FieldValueInvalid",
                'Invalid value: ["Egress","Ingress","Egress"]: may not specify more than two '
                "policyTypes",
            )
        ],
    ),
    (
        "selectors",
        {
            "podSelector": {
                "matchExpressions": [
                    {"key": "a", "operator": "In"},
                    {"key": "b", "operator": "Exists", "values": ["x"]},
                    {"key": "c", "operator": "Foo"},
                ]
            },
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"k": "bad value!"}}}]}],
        },
        [
            (
                "spec.podSelector.matchExpressions[0].values",
                "FieldValueRequired",
                "Required value: must be specified when `operator` is 'In' or 'NotIn'",
            ),
            (
                "spec.podSelector.matchExpressions[1].values",
                "FieldValueForbidden",
                "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            ),
            (
                "spec.podSelector.matchExpressions[2].operator",
                "FieldValueInvalid",
                'Invalid value: "Foo": not a valid selector operator',
            ),
            (
                f"{TO0}.namespaceSelector.matchLabels",
                "FieldValueInvalid",
                'Invalid value: "bad value!": a valid label must be an empty string or consist '
                "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
                "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
        ],
    ),
]


@pytest.mark.parametrize(("spec", "causes"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_policy_is_refused_with_the_servers_causes(
    kit: Kit, spec: dict[str, Any], causes: list[tuple[str, str, str]]
) -> None:
    """422 Invalid, with the server's causes in its order and words."""
    with pytest.raises(Invalid) as info:
        kit.backend.create(policy(kit, spec))
    assert [(c.field, c.reason, c.message) for c in info.value.causes] == causes
    assert 'NetworkPolicy.networking.k8s.io "np" is invalid' in info.value.message
    with pytest.raises(NotFound):
        kit.backend.get("NetworkPolicy", kit.namespace, "np")


@pytest.mark.parametrize(
    "spec",
    [
        {"egress": [{"ports": [{"port": 53.5}]}]},
        {"egress": [{"ports": [{"port": True}]}]},
        {"egress": [{"ports": {"port": 1}}]},
        {"egress": [{"to": [{"ipBlock": {"cidr": 10}}]}]},
        {"egress": [{"ports": [{"port": 1, "endPort": "2"}]}]},
        {"policyTypes": "Egress"},
    ],
    ids=["float-port", "bool-port", "ports-object", "int-cidr", "string-end-port", "types-string"],
)
def test_wrong_json_types_fail_decoding(kit: Kit, spec: dict[str, Any]) -> None:
    """A value of the wrong JSON type is 400 BadRequest, as the decoder answers."""
    with pytest.raises(BadRequest) as info:
        kit.backend.create(policy(kit, spec))
    assert info.value.message.startswith(
        'NetworkPolicy in version "v1" cannot be handled as a NetworkPolicy: json: cannot unmarshal'
    )


def test_core_api_version_is_refused(kit: Kit) -> None:
    """A NetworkPolicy claiming apiVersion v1 does not decode: v1 has no such kind."""
    body = policy(kit, {})
    body["apiVersion"] = "v1"
    with pytest.raises(BadRequest) as info:
        kit.backend.create(body)
    assert 'no kind "NetworkPolicy" is registered for version "v1"' in info.value.message


def test_missing_policy_is_not_found_in_its_group(kit: Kit) -> None:
    """The 404 names the resource with its group."""
    with pytest.raises(NotFound) as info:
        kit.backend.get("NetworkPolicy", kit.namespace, "gone")
    assert 'networkpolicies.networking.k8s.io "gone" not found' in info.value.message


def test_spec_change_bumps_generation(kit: Kit) -> None:
    """A patch of the spec counts a generation; a label change does not."""
    kit.backend.create(policy(kit, {"policyTypes": ["Egress"]}))
    labelled = kit.backend.patch(
        "NetworkPolicy", kit.namespace, "np", {"metadata": {"labels": {"a": "b"}}}
    )
    assert labelled["metadata"]["generation"] == 1
    patch = {"spec": {"egress": [{"ports": [{"port": 443}]}]}}
    changed = kit.backend.patch("NetworkPolicy", kit.namespace, "np", patch)
    assert changed["metadata"]["generation"] == 2
    assert changed["spec"]["egress"] == [{"ports": [{"protocol": "TCP", "port": 443}]}]


def test_policy_owned_by_a_pod_is_collected_with_it(kit: Kit) -> None:
    """The runner's way: create the policy, then the pod, then make the pod its owner."""
    kit.backend.create(policy(kit, {"policyTypes": ["Egress"]}, name="owned"))
    kit.backend.create(policy(kit, {"policyTypes": ["Egress"]}, name="unowned"))
    owner = kit.pod("owner", failure="Unschedulable")
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": owner["metadata"]["uid"]}
    kit.backend.patch(
        "NetworkPolicy", kit.namespace, "owned", {"metadata": {"ownerReferences": [ref]}}
    )
    kit.backend.delete("Pod", kit.namespace, "owner", grace_period_seconds=0)
    kit.wait_gone("NetworkPolicy", "owned")
    assert kit.backend.get("NetworkPolicy", kit.namespace, "unowned")["metadata"]["name"]


POLICIES = [
    EgressPolicy.deny_all(),
    EgressPolicy.dns_only(),
    EgressPolicy.allow(
        ["0.0.0.0/0", "2001:db8::/32"],
        [443, EgressPort(53, "udp"), EgressPort(8000, end_port=9000)],
        except_cidrs=["10.0.0.0/8", "169.254.169.254/32"],
    ),
    EgressPolicy.proxy_only("192.168.1.10", 3128),
    EgressPolicy(
        [EgressRule(ports=[3128], pods={"app": "proxy"}, namespace="egress")],
        dns=False,
    ),
    EgressPolicy([EgressRule(pods={})]),
]


@pytest.mark.parametrize(
    "egress",
    POLICIES,
    ids=["deny-all", "dns-only", "allow", "proxy", "proxy-pods", "namespace-pods"],
)
def test_built_policy_is_admitted_and_selects_only_the_runs_pod(
    kit: Kit, egress: EgressPolicy
) -> None:
    """The runner's NetworkPolicy is stored as built and selects the run's pod, no other."""
    spec = PodSpec("busybox:1.36", ["true"], namespace=kit.namespace, egress=egress)
    built = build_manifests(spec)
    other = build_manifests(spec)  # another run of the same spec
    assert built.network_policy is not None
    stored = kit.backend.create(copy.deepcopy(built.network_policy))
    assert stored["spec"] == built.network_policy["spec"]
    for manifests in (built, other):
        pod = copy.deepcopy(manifests.pod)
        pod["metadata"]["annotations"] = {"sim.podrunner.dev/failure": "Unschedulable"}
        kit.backend.create(pod)
    labels = stored["spec"]["podSelector"]["matchLabels"]
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    selected = kit.backend.list("Pod", kit.namespace, label_selector=selector).items
    assert [p["metadata"]["name"] for p in selected] == [built.pod_name]
