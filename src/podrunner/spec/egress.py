"""Egress control: where a run's pod may open connections, as a NetworkPolicy owned by the pod.

An :class:`EgressPolicy` on a :class:`~podrunner.PodSpec` (or a runner's default) makes the run
create a ``networking.k8s.io/v1`` NetworkPolicy that selects exactly the run's pod (its run-id
label) and allows only the listed egress: everything else the pod sends is dropped, by a CNI
that enforces NetworkPolicy. Ingress is left alone.

The rules mirror the API server's ``ValidateNetworkPolicySpec`` with strict CIDR parsing (what
kube-apiserver 1.36 enforces): a CIDR names a network (no bits past the prefix), has no
leading zeros and no IPv4-mapped IPv6 address; an ``except`` CIDR lies strictly inside the
CIDR it is carved from; a port is 1-65535, a port range ends at or after its start; the
protocol is TCP, UDP or SCTP. podrunner checks them when the policy is built, before any API
call.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from podrunner import _validation as v
from podrunner.errors import SpecError, kind_of
from podrunner.spec._fields import FrozenMap, _bool, _check, _str_map, _str_tuple, _text

__all__ = ["DNS_PORT", "PROTOCOLS", "EgressPolicy", "EgressPort", "EgressRule"]

PROTOCOLS = ("TCP", "UDP", "SCTP")
"""The protocols a NetworkPolicy port may name."""

DNS_PORT = 53
"""The port :attr:`EgressPolicy.dns` opens, over UDP and TCP."""

_NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set on every namespace by the server

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _port_number(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, value, f"must be an integer, not {kind_of(value)}")
    if not 1 <= value <= 65535:
        raise SpecError(field, value, "must be between 1 and 65535, inclusive")
    return value


def _port(value: int) -> int:
    return _port_number("egress.port", value)


def _end_port(value: int | None) -> int | None:
    return None if value is None else _port_number("egress.end_port", value)


def _protocol(value: str) -> str:
    text = _text("egress.protocol", value)
    if text.upper() not in PROTOCOLS:
        raise SpecError("egress.protocol", text, "must be one of 'TCP', 'UDP', 'SCTP'")
    return text.upper()


@attrs.frozen
class EgressPort:
    """A destination port, or a range of ports, of one protocol.

    Attributes:
        port: The port (1-65535).
        protocol: ``"TCP"`` (default), ``"UDP"`` or ``"SCTP"`` (any case).
        end_port: The last port of a range starting at ``port`` (inclusive).
    """

    port: int = attrs.field(converter=_port)
    protocol: str = attrs.field(default="TCP", converter=_protocol)
    end_port: int | None = attrs.field(default=None, kw_only=True, converter=_end_port)

    def __attrs_post_init__(self) -> None:
        if self.end_port is not None and self.end_port < self.port:
            raise SpecError(
                "egress.end_port", self.end_port, f"must be at least port ({self.port})"
            )

    def to_manifest(self) -> dict[str, Any]:
        """Return the ``NetworkPolicyPort`` JSON."""
        out: dict[str, Any] = {"protocol": self.protocol, "port": self.port}
        if self.end_port is not None:
            out["endPort"] = self.end_port
        return out


def _network(field: str, value: object) -> Network:
    """Parse a CIDR (or a single address, made a /32 or /128) as strictly as the server."""
    text = _text(field, value)
    try:
        network = ipaddress.ip_network(text if "/" in text else f"{text}/{_host_bits(text)}")
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise SpecError(
                field,
                text,
                "must be an IP address or a CIDR (e.g. 10.9.8.0/24 or 2001:db8::/64), "
                "without leading zeros",
            ) from None
        raise SpecError(
            field,
            text,
            f"has bits set past the prefix length: write {loose} for the network, or "
            f"{text.split('/')[0]}/{loose.max_prefixlen} for one address",
        ) from None
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
        raise SpecError(field, text, "must not be an IPv4-mapped IPv6 address: write the IPv4 one")
    return network


def _host_bits(address: str) -> int:
    return 128 if ":" in address else 32


def _cidrs(field: str, value: object) -> tuple[str, ...]:
    items = _str_tuple(field, value)
    return tuple(str(_network(f"{field}[{i}]", item)) for i, item in enumerate(items))


def _to_cidrs(value: Iterable[str]) -> tuple[str, ...]:
    return _cidrs("egress.cidrs", value)


def _except_cidrs(value: Iterable[str]) -> tuple[str, ...]:
    return _cidrs("egress.except_cidrs", value)


def _ports(value: Iterable[int | EgressPort]) -> tuple[EgressPort, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise SpecError("egress.ports", value, f"must be a sequence of ports, not {kind_of(value)}")
    out: list[EgressPort] = []
    items: tuple[object, ...] = tuple(value)  # checked one by one: callers may pass anything
    for i, item in enumerate(items):
        if isinstance(item, EgressPort):
            out.append(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            out.append(EgressPort(_port_number(f"egress.ports[{i}]", item)))
        else:
            raise SpecError(
                f"egress.ports[{i}]",
                item,
                f"must be a port number or an EgressPort, not {kind_of(item)}",
            )
    return tuple(out)


def _pods(value: Mapping[str, str] | None) -> FrozenMap[str] | None:
    if value is None:
        return None
    labels = _str_map("egress.pods", value)
    for key, item in labels.items():
        _check("egress.pods", key, v.label_key_error(key))
        _check(f"egress.pods[{key}]", item, v.label_value_error(item))
    return labels


def _namespace(value: str | None) -> str | None:
    if value is None:
        return None
    name = _text("egress.namespace", value)
    _check("egress.namespace", name, v.dns1123_label_error(name))
    return name


@attrs.frozen
class EgressRule:
    """Allow connections to some destinations on some ports.

    Destinations are ``cidrs`` (IP ranges, less ``except_cidrs``) and pods (``pods`` labels,
    in ``namespace`` or in the run's own namespace); a rule without destinations allows every
    destination on its ``ports``, and a rule without ports allows every port of its
    destinations. A rule must limit one or the other.

    Pods are matched by their own IPs: a Service's cluster IP is translated to a pod's IP
    before most CNIs apply the policy, so allow the pods behind a Service, not its IP.

    Attributes:
        cidrs: IP ranges (``"10.0.0.0/8"``) or single addresses (``"10.0.0.7"``, stored as
            ``"10.0.0.7/32"``); each is stored in canonical form (``2001:DB8::/32`` becomes
            ``2001:db8::/32``), which is what the NetworkPolicy carries.
        ports: Port numbers (TCP) or :class:`EgressPort` values.
        except_cidrs: Ranges carved out of the ``cidrs`` that contain them (each must lie
            strictly inside at least one of them).
        pods: Labels of the pods to allow (``{}``: every pod of the namespace).
        namespace: The namespace of those pods (every pod of it when ``pods`` is ``None``).
    """

    cidrs: tuple[str, ...] = attrs.field(default=(), converter=_to_cidrs)
    ports: tuple[EgressPort, ...] = attrs.field(default=(), converter=_ports)
    except_cidrs: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_except_cidrs)
    pods: FrozenMap[str] | None = attrs.field(default=None, kw_only=True, converter=_pods)
    namespace: str | None = attrs.field(default=None, kw_only=True, converter=_namespace)

    def __attrs_post_init__(self) -> None:
        if not (self.cidrs or self.ports or self.pods is not None or self.namespace):
            raise SpecError(
                "egress",
                self,
                "a rule needs cidrs, pods, a namespace or ports: an empty rule would allow "
                "all egress (give no EgressPolicy for that)",
            )
        for i, text in enumerate(self.except_cidrs):
            if not self._carved_from(text):
                raise SpecError(
                    f"egress.except_cidrs[{i}]",
                    text,
                    f"must lie strictly inside one of cidrs {list(self.cidrs)}",
                )

    def _carved_from(self, except_cidr: str) -> list[str]:
        """The ``cidrs`` that strictly contain ``except_cidr``."""
        inner = ipaddress.ip_network(except_cidr)
        out = []
        for text in self.cidrs:
            outer = ipaddress.ip_network(text)
            if (
                inner.version == outer.version
                and inner.prefixlen > outer.prefixlen
                and inner.subnet_of(outer)  # type: ignore[arg-type]  # versions match
            ):
                out.append(text)
        return out

    def to_manifest(self) -> dict[str, Any]:
        """Return the ``NetworkPolicyEgressRule`` JSON."""
        to: list[dict[str, Any]] = []
        for cidr in self.cidrs:
            block: dict[str, Any] = {"cidr": cidr}
            carved = [e for e in self.except_cidrs if cidr in self._carved_from(e)]
            if carved:
                block["except"] = carved
            to.append({"ipBlock": block})
        if self.pods is not None or self.namespace is not None:
            peer: dict[str, Any] = {}
            if self.pods is not None:
                peer["podSelector"] = {"matchLabels": dict(self.pods)} if self.pods else {}
            if self.namespace is not None:
                peer["namespaceSelector"] = {"matchLabels": {_NAMESPACE_NAME_LABEL: self.namespace}}
            to.append(peer)
        rule: dict[str, Any] = {}
        if to:
            rule["to"] = to
        if self.ports:
            rule["ports"] = [p.to_manifest() for p in self.ports]
        return rule


def _rules(value: Iterable[EgressRule]) -> tuple[EgressRule, ...]:
    if isinstance(value, EgressRule):
        return (value,)
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise SpecError(
            "egress.rules", value, f"must be a sequence of EgressRule, not {kind_of(value)}"
        )
    items = tuple(value)
    for i, item in enumerate(items):
        if not isinstance(item, EgressRule):
            raise SpecError(
                f"egress.rules[{i}]", item, f"must be an EgressRule, not {kind_of(item)}"
            )
    return items


def _dns(value: bool) -> bool:
    return _bool("egress.dns", value)


@attrs.frozen
class EgressPolicy:
    """Which connections a run's pod may open; everything else is dropped.

    The run creates a NetworkPolicy named ``<pod>-egress`` before the pod, selecting the pod by
    its run-id label; once the pod exists, the pod owns it, so the cluster deletes it with the
    pod. Enforcement is the CNI's: on a cluster whose network plugin ignores NetworkPolicy
    (Flannel alone, for one), the policy is stored and has no effect.

    Build one with :meth:`deny_all`, :meth:`dns_only`, :meth:`allow` or :meth:`proxy_only`, or
    from :class:`EgressRule` values.

    Attributes:
        rules: What may be reached (any rule matching allows the connection).
        dns: Also allow DNS: port 53 over UDP and TCP, to any address (so cluster DNS works
            however it is deployed, NodeLocal DNSCache included). DNS can carry data out;
            leave it off when that matters.
    """

    rules: tuple[EgressRule, ...] = attrs.field(default=(), converter=_rules)
    dns: bool = attrs.field(default=True, kw_only=True, converter=_dns)

    @classmethod
    def deny_all(cls) -> EgressPolicy:
        """No egress at all, not even DNS."""
        return cls((), dns=False)

    @classmethod
    def dns_only(cls) -> EgressPolicy:
        """DNS lookups only."""
        return cls((), dns=True)

    @classmethod
    def allow(
        cls,
        cidrs: Iterable[str] = (),
        ports: Iterable[int | EgressPort] = (),
        *,
        except_cidrs: Iterable[str] = (),
        dns: bool = True,
    ) -> EgressPolicy:
        """Allow ``cidrs`` (every address when empty) on ``ports`` (every port when empty).

        ``EgressPolicy.allow(["0.0.0.0/0"], [443], except_cidrs=["10.0.0.0/8"])`` allows
        HTTPS anywhere but the 10/8 network. DNS is allowed too unless ``dns=False``.
        """
        rule = EgressRule(cidrs, ports, except_cidrs=except_cidrs)
        return cls((rule,), dns=dns)

    @classmethod
    def proxy_only(cls, address: str, port: int, *, dns: bool = False) -> EgressPolicy:
        """Allow only TCP to one proxy (an IP address or a CIDR) on one port.

        DNS is off by default: a client that sends everything through the proxy needs none,
        and DNS could carry data past it. For a proxy running as pods in the cluster, allow
        its pods instead (the port is then the pods' own, not a Service's):
        ``EgressPolicy([EgressRule(ports=[3128], pods={...}, namespace=...)], dns=False)``.
        """
        return cls((EgressRule([address], [port]),), dns=dns)

    def to_manifest(self, pod_labels: Mapping[str, str]) -> dict[str, Any]:
        """Return the ``NetworkPolicySpec`` JSON selecting the pods with ``pod_labels``."""
        egress = [r.to_manifest() for r in self.rules]
        if self.dns:
            dns_ports = [{"protocol": protocol, "port": DNS_PORT} for protocol in ("UDP", "TCP")]
            egress.insert(0, {"ports": dns_ports})
        spec: dict[str, Any] = {
            "podSelector": {"matchLabels": dict(pod_labels)},
            "policyTypes": ["Egress"],
        }
        if egress:
            spec["egress"] = egress
        return spec


def _egress(value: EgressPolicy | None) -> EgressPolicy | None:
    """The ``PodSpec.egress`` converter: an :class:`EgressPolicy` or ``None``."""
    if value is None or isinstance(value, EgressPolicy):
        return value
    raise SpecError("egress", value, f"must be an EgressPolicy, not {kind_of(value)}")
