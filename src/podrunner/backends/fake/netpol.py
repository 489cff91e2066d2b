"""Defaulting and validation of NetworkPolicy (``networking.k8s.io/v1``), as kube-apiserver 1.36.

Decoding (400 for a wrong JSON type), then the defaults (a port's protocol is TCP; without
``policyTypes`` a policy is ``Ingress``, plus ``Egress`` when it has egress rules), then
``ValidateNetworkPolicySpec``: label selectors, ports, peers and IP blocks, with the strict
CIDR parsing the ``StrictIPCIDRValidation`` gate (on in 1.36) applies. The causes come in the
server's order and wording, with its field paths (``spec.egress[0].to[0].ipBlock.cidr``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from podrunner.backends.fake.field_errors import Errors, decode_error
from podrunner.backends.fake.memo import v
from podrunner.backends.fake.objectmeta import _label_key_wording

__all__ = ["prepare_network_policy"]

_KIND = "NetworkPolicy"
_PROTOCOLS = ("TCP", "UDP", "SCTP")
_POLICY_TYPES = ("Ingress", "Egress")
_DIRECTIONS = (
    ("ingress", "from", "NetworkPolicyIngressRule"),
    ("egress", "to", "NetworkPolicyEgressRule"),
)
_PEER_FIELDS = ("podSelector", "namespaceSelector", "ipBlock")
_PORT_NAME = re.compile(r"[-a-z0-9]+")
_CIDR_EXAMPLE = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# -- decoding ------------------------------------------------------------------------------------


def _go_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else "value"


def _expect(value: object, ok: bool, path: str, go: str) -> None:
    if not ok:
        detail = (
            f"json: cannot unmarshal {_go_type(value)} into Go struct field {path} of type {go}"
        )
        if isinstance(value, (int, float)) and not isinstance(value, bool) and go == "int32":
            detail = (
                f"json: cannot unmarshal number {value} into Go struct field {path} of type {go}"
            )
        raise decode_error(_KIND, detail)


def _list(parent: dict[str, Any], key: str, path: str, go: str) -> list[Any]:
    """``parent[key]`` as a list; an absent, null or empty one is dropped (``omitempty``)."""
    value = parent.get(key)
    if value is None or value == []:
        parent.pop(key, None)
        return []
    _expect(value, isinstance(value, list), path, go)
    assert isinstance(value, list)
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decode_selector(selector: object, path: str) -> dict[str, Any]:
    _expect(selector, isinstance(selector, dict), path, "v1.LabelSelector")
    assert isinstance(selector, dict)
    labels = selector.get("matchLabels")
    if labels is not None:
        labels_path = f"LabelSelector.{path.partition('.')[2]}.matchLabels"
        _expect(labels, isinstance(labels, dict), labels_path, "map[string]string")
        for item in labels.values():
            _expect(item, isinstance(item, str), labels_path, "string")
        if not labels:
            del selector["matchLabels"]
    else:
        selector.pop("matchLabels", None)
    exprs_path = f"LabelSelector.{path.partition('.')[2]}.matchExpressions"
    exprs = _list(selector, "matchExpressions", exprs_path, "[]v1.LabelSelectorRequirement")
    for expr in exprs:
        where = f"LabelSelectorRequirement.{path.partition('.')[2]}.matchExpressions"
        _expect(expr, isinstance(expr, dict), exprs_path, "v1.LabelSelectorRequirement")
        for field in ("key", "operator"):
            _expect(expr.get(field, ""), isinstance(expr.get(field, ""), str), where, "string")
        for item in _list(expr, "values", f"{where}.values", "[]string"):
            _expect(item, isinstance(item, str), f"{where}.values", "string")
    return selector


def _decode_port(port: object, direction: str) -> None:
    where = f"NetworkPolicyPort.spec.{direction}.ports"
    _expect(port, isinstance(port, dict), f"spec.{direction}.ports", "v1.NetworkPolicyPort")
    assert isinstance(port, dict)
    for field in [k for k in port if k not in ("protocol", "port", "endPort")]:
        del port[field]
    if port.get("protocol") is None:
        port["protocol"] = "TCP"  # SetDefaults_NetworkPolicyPort
    _expect(port["protocol"], isinstance(port["protocol"], str), f"{where}.protocol", "v1.Protocol")
    number = port.get("port")
    if number is None:
        port.pop("port", None)
    else:
        _expect(number, _is_int(number) or isinstance(number, str), f"{where}.port", "int32")
    end = port.get("endPort")
    if end is None:
        port.pop("endPort", None)
    else:
        _expect(end, _is_int(end), f"{where}.endPort", "int32")


def _decode_peer(peer: object, direction: str, peers: str) -> None:
    where = f"NetworkPolicyPeer.spec.{direction}.{peers}"
    _expect(peer, isinstance(peer, dict), f"spec.{direction}.{peers}", "v1.NetworkPolicyPeer")
    assert isinstance(peer, dict)
    for field in list(peer):
        if field not in _PEER_FIELDS or peer[field] is None:
            del peer[field]
    for field in ("podSelector", "namespaceSelector"):
        if field in peer:
            _decode_selector(peer[field], f"{where}.{field}")
    block = peer.get("ipBlock")
    if block is not None:
        _expect(block, isinstance(block, dict), f"{where}.ipBlock", "v1.IPBlock")
        block_path = f"IPBlock.spec.{direction}.{peers}.ipBlock"
        cidr = block.get("cidr", "")
        _expect(cidr, isinstance(cidr, str), f"{block_path}.cidr", "string")
        for item in _list(block, "except", f"{block_path}.except", "[]string"):
            _expect(item, isinstance(item, str), f"{block_path}.except", "string")


def _decode(obj: dict[str, Any]) -> dict[str, Any]:
    """Check the JSON types, drop what ``omitempty`` drops, apply the defaults."""
    spec = obj.get("spec")
    if spec is None:
        spec = {}
    _expect(spec, isinstance(spec, dict), "NetworkPolicy.spec", "v1.NetworkPolicySpec")
    selector = spec.get("podSelector")
    out: dict[str, Any] = {
        "podSelector": {}
        if selector is None
        else _decode_selector(selector, "NetworkPolicySpec.spec.podSelector")
    }
    for direction, peers, rule_go in _DIRECTIONS:
        rules = _list(spec, direction, f"NetworkPolicySpec.spec.{direction}", f"[]v1.{rule_go}")
        for rule in rules:
            _expect(rule, isinstance(rule, dict), f"spec.{direction}", f"v1.{rule_go}")
            ports_path = f"{rule_go}.spec.{direction}.ports"
            for port in _list(rule, "ports", ports_path, "[]v1.NetworkPolicyPort"):
                _decode_port(port, direction)
            peers_path = f"{rule_go}.spec.{direction}.{peers}"
            for peer in _list(rule, peers, peers_path, "[]v1.NetworkPolicyPeer"):
                _decode_peer(peer, direction, peers)
            for key in [k for k in rule if k not in ("ports", peers)]:
                del rule[key]  # unknown fields are dropped, as the decoder does
        if rules:
            out[direction] = rules
    types = _list(spec, "policyTypes", "NetworkPolicySpec.spec.policyTypes", "[]v1.PolicyType")
    for item in types:
        _expect(item, isinstance(item, str), "NetworkPolicySpec.spec.policyTypes", "v1.PolicyType")
    if not types:
        # SetDefaults_NetworkPolicy: every policy is at least an ingress policy.
        types = ["Ingress", "Egress"] if out.get("egress") else ["Ingress"]
    out["policyTypes"] = types
    obj["spec"] = out
    return out


# -- validation ----------------------------------------------------------------------------------


def _check_selector(selector: dict[str, Any], path: str, errs: Errors) -> None:
    """ValidateLabelSelector (label values checked: a create allows no invalid ones)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        error = v.label_key_error(key)
        if error:
            errs.invalid(f"{path}.matchLabels", key, _label_key_wording(error))
        error = v.label_value_error(value)
        if error:
            errs.invalid(f"{path}.matchLabels", value, error)
    for i, expr in enumerate(selector.get("matchExpressions") or ()):
        where = f"{path}.matchExpressions[{i}]"
        operator = expr.get("operator", "")
        values = expr.get("values") or []
        if operator in ("In", "NotIn"):
            if not values:
                errs.required(
                    f"{where}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.forbidden(
                    f"{where}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
        else:
            errs.invalid(f"{where}.operator", operator, "not a valid selector operator")
        key = expr.get("key", "")
        error = v.label_key_error(key)
        if error:
            errs.invalid(f"{where}.key", key, _label_key_wording(error))
        for j, value in enumerate(values):
            error = v.label_value_error(value)
            if error:
                errs.invalid(f"{where}.values[{j}]", value, error)


def _port_name_errors(name: str) -> list[str]:
    """IsValidPortName: every rule a port name breaks, in the server's order."""
    out = []
    if len(name) > 15:
        out.append("must be no more than 15 characters")
    if not _PORT_NAME.fullmatch(name):
        out.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", name):
        out.append("must contain at least one letter (a-z)")
    if "--" in name:
        out.append("must not contain consecutive hyphens")
    if name and (name[0] == "-" or name[-1] == "-"):
        out.append("must not begin or end with a hyphen")
    return out


def _check_port(port: dict[str, Any], path: str, errs: Errors) -> None:
    """ValidateNetworkPolicyPort."""
    protocol = port["protocol"]
    if protocol not in _PROTOCOLS:
        errs.not_supported(f"{path}.protocol", protocol, _PROTOCOLS, ordered=True)
    number, end = port.get("port"), port.get("endPort")
    range_rule = "must be between 1 and 65535, inclusive"
    if number is None:
        if end is not None:
            errs.invalid(
                f"{path}.endPort", end, "may not be specified when `port` is not specified"
            )
    elif isinstance(number, int):
        if not 1 <= number <= 65535:
            errs.invalid(f"{path}.port", number, range_rule)
        if end is not None:
            if end < number:
                # kube-apiserver 1.36 shows the start port as the value here.
                errs.invalid(f"{path}.endPort", number, "must be greater than or equal to `port`")
            if not 1 <= end <= 65535:
                errs.invalid(f"{path}.endPort", end, range_rule)
    else:
        if end is not None:
            errs.invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric")
        for message in _port_name_errors(number):
            errs.invalid(f"{path}.port", number, message, as_is=True)


def _parse_cidr(text: str) -> tuple[Network, str | None] | None:
    """ParseCIDRSloppy, then the strict checks: ``(network, first strict error)``, or ``None``."""
    address, slash, prefix = text.partition("/")
    if not slash or not prefix.isascii() or not prefix.isdigit():
        return None
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    leading_zeros = len(prefix) > 1 and prefix[0] == "0"
    try:
        if ":" in address:
            ip = ipaddress.IPv6Address(address)
        else:
            octets = address.split(".")
            if len(octets) != 4 or not all(o.isascii() and o.isdigit() for o in octets):
                return None
            if any(int(o) > 255 for o in octets):
                return None
            leading_zeros = leading_zeros or any(len(o) > 1 and o[0] == "0" for o in octets)
            ip = ipaddress.IPv4Address(".".join(str(int(o)) for o in octets))
    except ValueError:
        return None
    if int(prefix) > ip.max_prefixlen:
        return None
    network = ipaddress.ip_network((ip, int(prefix)), strict=False)
    strict = None
    if leading_zeros:
        strict = "must not have leading 0s in IP or prefix length"
    elif isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        strict = "must not have an IPv4-mapped IPv6 address"
    elif network.network_address != ip:
        strict = "must not have bits set beyond the prefix length"
    return network, strict


def _check_cidr(text: str, path: str, errs: Errors) -> Network | None:
    parsed = _parse_cidr(text)
    if parsed is None:
        errs.invalid(path, text, _CIDR_EXAMPLE)
        return None
    network, strict = parsed
    if strict is not None:
        errs.invalid(path, text, strict)
    return network


def _check_ip_block(block: dict[str, Any], path: str, errs: Errors) -> None:
    """ValidateIPBlock: a CIDR, and ``except`` CIDRs strictly inside it."""
    cidr = block.get("cidr") or ""
    if not cidr:
        errs.required(f"{path}.cidr")
        return
    outer = _check_cidr(cidr, f"{path}.cidr", errs)
    if outer is None:
        return
    for i, text in enumerate(block.get("except") or ()):
        where = f"{path}.except[{i}]"
        inner = _check_cidr(text, where, errs)
        if inner is None:
            continue
        # Go's IPNet.Contains turns an IPv4-mapped address into IPv4 before comparing, and a
        # network parsed from IPv6 text stays IPv6: so such an address is never inside one.
        probe: ipaddress.IPv4Address | ipaddress.IPv6Address = inner.network_address
        if isinstance(probe, ipaddress.IPv6Address) and probe.ipv4_mapped is not None:
            probe = probe.ipv4_mapped
        inside = probe.version == outer.version and probe in outer
        if not inside or outer.prefixlen >= inner.prefixlen:
            errs.invalid(where, text, "must be a strict subset of `cidr`")


def _check_peer(peer: dict[str, Any], path: str, errs: Errors) -> None:
    """ValidateNetworkPolicyPeer: exactly an ipBlock, or pod and/or namespace selectors."""
    for field in ("podSelector", "namespaceSelector"):
        if field in peer:
            _check_selector(peer[field], f"{path}.{field}", errs)
    if "ipBlock" in peer:
        _check_ip_block(peer["ipBlock"], f"{path}.ipBlock", errs)
    count = sum(field in peer for field in ("podSelector", "namespaceSelector", "ipBlock"))
    if count == 0:
        errs.required(path, "must specify a peer")
    elif count > 1 and "ipBlock" in peer:
        errs.forbidden(path, "may not specify both ipBlock and another peer")


def prepare_network_policy(obj: dict[str, Any], errs: Errors) -> None:
    """Default and validate a NetworkPolicy in place (400 and 422 as the server answers)."""
    spec = _decode(obj)
    _check_selector(spec["podSelector"], "spec.podSelector", errs)
    for direction, peers, _ in _DIRECTIONS:
        for i, rule in enumerate(spec.get(direction) or ()):
            where = f"spec.{direction}[{i}]"
            for j, port in enumerate(rule.get("ports") or ()):
                _check_port(port, f"{where}.ports[{j}]", errs)
            for j, peer in enumerate(rule.get(peers) or ()):
                _check_peer(peer, f"{where}.{peers}[{j}]", errs)
    types = spec["policyTypes"]
    if len(types) > len(_POLICY_TYPES):
        errs.invalid("spec.policyTypes", types, "may not specify more than two policyTypes")
        return
    for i, item in enumerate(types):
        if item not in _POLICY_TYPES:
            errs.not_supported(f"spec.policyTypes[{i}]", item, _POLICY_TYPES, ordered=True)
