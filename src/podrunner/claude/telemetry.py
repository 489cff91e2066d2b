"""OpenTelemetry for Claude Code in a pod: one option that sets the variables the CLI reads.

Claude Code exports its own telemetry when ``CLAUDE_CODE_ENABLE_TELEMETRY=1``: metrics
(sessions, tokens, cost, lines changed...) through the OpenTelemetry metrics signal, events
(prompts, tool results, API requests and errors) through the logs signal, and, in beta, traces.
Where they go is read from the standard ``OTEL_*`` variables (Claude Code's monitoring docs):

==================================  ============================================================
variable                            set from
==================================  ============================================================
``CLAUDE_CODE_ENABLE_TELEMETRY``    always ``1``
``OTEL_METRICS_EXPORTER``           ``otlp`` when ``metrics`` (default), else ``none``
``OTEL_LOGS_EXPORTER``              ``otlp`` when ``logs`` (default), else ``none``
``OTEL_TRACES_EXPORTER``            ``otlp`` when ``traces``, with
                                    ``CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1`` (traces are beta)
``OTEL_EXPORTER_OTLP_ENDPOINT``     ``endpoint``
``OTEL_EXPORTER_OTLP_PROTOCOL``     ``protocol``: ``grpc`` (default), ``http/protobuf``,
                                    ``http/json``
``OTEL_EXPORTER_OTLP_HEADERS``      ``headers``: **through a Secret**, never a literal value
``OTEL_RESOURCE_ATTRIBUTES``        ``resource_attributes`` (values percent-encoded)
``OTEL_METRIC_EXPORT_INTERVAL``     ``metric_export_interval`` (seconds, sent in ms)
``OTEL_LOGS_EXPORT_INTERVAL``       ``logs_export_interval`` (seconds, sent in ms)
``OTEL_LOG_USER_PROMPTS``           ``1`` with ``log_user_prompts`` (prompt text in events)
``OTEL_LOG_TOOL_DETAILS``           ``1`` with ``log_tool_details`` (tool arguments in events)
==================================  ============================================================

Collector headers usually carry a token, so they never sit in the pod manifest: a mapping of
header values goes into the run's per-run Secret (owned by the pod, like credentials) and
reaches the container through a ``secretKeyRef``; a :class:`~podrunner.SecretRef` names a key
of your own Secret that already holds the whole ``name=value,name=value`` text.

A pod exits right after its task: Claude Code flushes its exporters on exit, so the last
metrics are not lost, but a collector that is unreachable costs up to the exporter's timeout
at the end of each run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal
from urllib.parse import quote, urlsplit

import attrs

from podrunner.claude._checks import choice, flag, text
from podrunner.errors import REDACTED, SpecError, kind_of
from podrunner.spec import FrozenMap, SecretRef

__all__ = ["OTLP_PROTOCOLS", "Telemetry"]

OTLP_PROTOCOLS: tuple[str, ...] = ("grpc", "http/protobuf", "http/json")
"""The values ``OTEL_EXPORTER_OTLP_PROTOCOL`` accepts."""

HEADERS_ENV = "OTEL_EXPORTER_OTLP_HEADERS"
OtlpProtocol = Literal["grpc", "http/protobuf", "http/json"]

# An HTTP header name (RFC 9110 token) and an OpenTelemetry attribute key.
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_ATTRIBUTE_KEY_RE = re.compile(r"[A-Za-z0-9_.\-/]+")
_MAX_INTERVAL_S = 86_400.0


def _endpoint(value: object) -> str:
    url = text("telemetry.endpoint", value)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError("telemetry.endpoint", url, "must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        # Credentials in the URL would be a literal value in the pod manifest.
        raise SpecError(
            "telemetry.endpoint",
            REDACTED,
            "must not carry credentials; give them as headers (they go through a Secret)",
        )
    if any(c.isspace() for c in url):
        raise SpecError("telemetry.endpoint", url, "must not contain spaces")
    return url


def _protocol(value: object) -> OtlpProtocol:
    checked = choice("telemetry.protocol", value, OTLP_PROTOCOLS)
    if checked == "http/json":
        return "http/json"
    return "http/protobuf" if checked == "http/protobuf" else "grpc"


def _headers(value: object) -> FrozenMap[str] | SecretRef | None:
    if value is None or isinstance(value, SecretRef):
        return value
    if not isinstance(value, Mapping):
        raise SpecError(
            "telemetry.headers", kind_of(value), "must be a mapping of headers or a SecretRef"
        )
    for name, item in value.items():
        if not isinstance(name, str) or not _TOKEN_RE.fullmatch(name):
            raise SpecError("telemetry.headers", name, "header names must be HTTP tokens")
        field = f"telemetry.headers[{name}]"
        header = text(field, item, secret=True)
        # The variable is "name=value,name=value": a comma or a line break would split it.
        if "," in header or any(ord(c) < 32 or ord(c) == 127 for c in header):
            raise SpecError(field, REDACTED, "must not contain commas or control characters")
    return FrozenMap(value)


def _attributes(value: object) -> FrozenMap[str]:
    if value is None:
        return FrozenMap()
    if not isinstance(value, Mapping):
        raise SpecError("telemetry.resource_attributes", kind_of(value), "must be a mapping")
    for key, item in value.items():
        if not isinstance(key, str) or not _ATTRIBUTE_KEY_RE.fullmatch(key):
            raise SpecError(
                "telemetry.resource_attributes",
                key,
                "keys must be attribute names such as 'team.id' (letters, digits, _ . - /)",
            )
        text(f"telemetry.resource_attributes[{key}]", item)
    return FrozenMap(value)


def _interval(field: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(field, value, f"must be a number of seconds, not {kind_of(value)}")
    if not 0.001 <= value <= _MAX_INTERVAL_S:
        raise SpecError(field, value, "must be between 0.001 and 86400 seconds")
    return float(value)


def _metric_interval(value: object) -> float | None:
    return _interval("telemetry.metric_export_interval", value)


def _logs_interval(value: object) -> float | None:
    return _interval("telemetry.logs_export_interval", value)


def _metrics(value: object) -> bool:
    return flag("telemetry.metrics", value)


def _logs(value: object) -> bool:
    return flag("telemetry.logs", value)


def _traces(value: object) -> bool:
    return flag("telemetry.traces", value)


def _log_prompts(value: object) -> bool:
    return flag("telemetry.log_user_prompts", value)


def _log_tools(value: object) -> bool:
    return flag("telemetry.log_tool_details", value)


def _headers_repr(value: FrozenMap[str] | SecretRef | None) -> str:
    if value is None or isinstance(value, SecretRef):
        return repr(value)
    return repr(dict.fromkeys(value, REDACTED))


@attrs.frozen
class Telemetry:
    """Where Claude Code sends its OpenTelemetry metrics, events and traces.

    Give it to :class:`~podrunner.claude.ClaudeRunner` (or :class:`ClaudeWorker`) as
    ``telemetry=``; every task's pod then gets the variables listed in
    :mod:`podrunner.claude.telemetry`.

    Attributes:
        endpoint: The OTLP collector, e.g. ``http://otel-collector.observability:4317``.
        protocol: ``"grpc"`` (default), ``"http/protobuf"`` or ``"http/json"``.
        headers: Headers for the collector (usually a token): a mapping, whose values go into
            the run's per-run Secret, or a :class:`~podrunner.SecretRef` to a key holding the
            whole ``name=value,name=value`` text. Never a literal in the pod manifest.
        resource_attributes: Attributes on everything exported, e.g. ``{"team.id": "ml"}``.
        metrics: Export metrics (``OTEL_METRICS_EXPORTER=otlp``).
        logs: Export events (``OTEL_LOGS_EXPORTER=otlp``).
        traces: Export traces (beta: also sets ``CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1``).
        metric_export_interval: Seconds between metric exports (Claude Code's default: 60).
        logs_export_interval: Seconds between event exports (default: 5).
        log_user_prompts: Put the prompt text in events (off by default: prompts may be
            confidential).
        log_tool_details: Put tool arguments (commands, paths) in events.
    """

    endpoint: str = attrs.field(converter=_endpoint)
    protocol: OtlpProtocol = attrs.field(default="grpc", kw_only=True, converter=_protocol)
    headers: FrozenMap[str] | SecretRef | None = attrs.field(
        default=None, kw_only=True, converter=_headers, repr=_headers_repr, eq=False
    )
    resource_attributes: FrozenMap[str] = attrs.field(
        factory=FrozenMap, kw_only=True, converter=_attributes
    )
    metrics: bool = attrs.field(default=True, kw_only=True, converter=_metrics)
    logs: bool = attrs.field(default=True, kw_only=True, converter=_logs)
    traces: bool = attrs.field(default=False, kw_only=True, converter=_traces)
    metric_export_interval: float | None = attrs.field(
        default=None, kw_only=True, converter=_metric_interval
    )
    logs_export_interval: float | None = attrs.field(
        default=None, kw_only=True, converter=_logs_interval
    )
    log_user_prompts: bool = attrs.field(default=False, kw_only=True, converter=_log_prompts)
    log_tool_details: bool = attrs.field(default=False, kw_only=True, converter=_log_tools)

    def __attrs_post_init__(self) -> None:
        if not (self.metrics or self.logs or self.traces):
            raise SpecError(
                "telemetry.metrics", False, "at least one of metrics, logs or traces is needed"
            )

    def env(self) -> dict[str, str]:
        """Return the plain variables (none of them secret) for the container."""
        env = {
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "OTEL_METRICS_EXPORTER": "otlp" if self.metrics else "none",
            "OTEL_LOGS_EXPORTER": "otlp" if self.logs else "none",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": self.protocol,
        }
        if self.traces:
            env["OTEL_TRACES_EXPORTER"] = "otlp"
            env["CLAUDE_CODE_ENHANCED_TELEMETRY_BETA"] = "1"
        if self.resource_attributes:
            # W3C Baggage format: values percent-encoded, so a space or comma cannot break it.
            env["OTEL_RESOURCE_ATTRIBUTES"] = ",".join(
                f"{key}={quote(value, safe='')}" for key, value in self.resource_attributes.items()
            )
        for name, seconds in (
            ("OTEL_METRIC_EXPORT_INTERVAL", self.metric_export_interval),
            ("OTEL_LOGS_EXPORT_INTERVAL", self.logs_export_interval),
        ):
            if seconds is not None:
                env[name] = str(max(1, round(seconds * 1000)))
        if self.log_user_prompts:
            env["OTEL_LOG_USER_PROMPTS"] = "1"
        if self.log_tool_details:
            env["OTEL_LOG_TOOL_DETAILS"] = "1"
        return env

    def secret_env(self) -> dict[str, str | SecretRef]:
        """Return the variables that go through a Secret: the collector headers, if any."""
        if self.headers is None:
            return {}
        if isinstance(self.headers, SecretRef):
            return {HEADERS_ENV: self.headers}
        return {HEADERS_ENV: ",".join(f"{k}={v}" for k, v in self.headers.items())}

    @property
    def secret_values(self) -> tuple[str, ...]:
        """The plain header values this object holds (for leak scans)."""
        if self.headers is None or isinstance(self.headers, SecretRef):
            return ()
        return tuple(self.headers.values())
