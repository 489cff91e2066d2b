"""Where commands run (``--backend``): building the runner and saying what went wrong."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from podrunner.cli._group import EXIT_USAGE, F
from podrunner.errors import ConfigError, SpecError

__all__ = [
    "API_OUTAGE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "FAKE_KEEPS_NOTHING",
    "CommandErrors",
    "backend_options",
    "close_runner",
    "describe_backend",
    "error_dict",
    "error_text",
    "make_runner",
    "namespace_option",
    "run_errors",
]


EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
FAKE_KEEPS_NOTHING = "the fake backend's pods live in this process and end with it"
API_OUTAGE = 5.0
"""Seconds a command keeps retrying an API server it cannot reach (``--api-outage``).

Shorter than the SDK's ``RetryPolicy.outage`` (30 s, sized to ride out a control-plane
restart under runs in flight): someone at a terminal wants to hear soon that it is down.
"""


def backend_options(func: F) -> F:
    """Where to run: the fake cluster (local processes) or a real one, shared by commands."""
    options = [
        click.option(
            "--backend",
            type=click.Choice(["fake", "kubernetes"], case_sensitive=False),
            default="fake",
            show_default=True,
            envvar="PODRUNNER_BACKEND",
            show_envvar=True,
            help="fake: an in-memory cluster running the command as a local process "
            "(the image is ignored; nothing outlives the command); kubernetes: a real cluster.",
        ),
        click.option(
            "--kubeconfig", metavar="PATH", help="Kubeconfig (default: the usual lookup)."
        ),
        click.option("--context", help="Kubeconfig context (default: the current one)."),
        click.option(
            "--api-outage",
            type=click.FloatRange(min=0),
            default=API_OUTAGE,
            show_default=True,
            metavar="SECONDS",
            envvar="PODRUNNER_API_OUTAGE",
            show_envvar=True,
            help="Seconds to keep retrying an API server that cannot be reached or answers "
            "502/503/504 before giving up (each request is first tried 5 times, about 3 s). "
            "The SDK's default, 30, rides out a control-plane restart.",
        ),
        click.option("--verbose", "-v", is_flag=True, help="Show details of errors."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def namespace_option(func: F) -> F:
    """``--namespace`` for commands that do not build a spec (the spec options have their own)."""
    return click.option("--namespace", help="Namespace (default: the context's, else default).")(
        func
    )


def make_runner(
    backend: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    *,
    api_outage: float = API_OUTAGE,
) -> Any:
    """Build a PodRunner for the backend options (raises ConfigError for a bad kubeconfig).

    ``api_outage`` is the runner's ``RetryPolicy.outage`` (``--api-outage``).
    """
    from podrunner.run import PodRunner, RetryPolicy

    retry = RetryPolicy(outage=api_outage)
    if backend.lower() == "fake":
        from podrunner.backends.fake import FakeCluster

        cluster = FakeCluster(runtime="local")
        return PodRunner(cluster.backend, namespace or "default", retry=retry)
    from podrunner.backends.kubernetes import ClusterConfig, KubernetesBackend

    config = (
        ClusterConfig.from_kubeconfig_file(kubeconfig, context)
        if kubeconfig
        else ClusterConfig.default(context)
    )
    return PodRunner(KubernetesBackend(config), namespace or config.namespace, retry=retry)


def close_runner(runner: Any) -> None:
    """Close the runner and its backend; on the fake this ends its local processes and dirs."""
    try:
        runner.close()
    finally:
        runner.backend.close()


def is_fake(runner: Any) -> bool:
    from podrunner.backends.fake import FakeBackend

    return isinstance(runner.backend, FakeBackend)


def describe_backend(
    backend: str, runner: Any, namespace: str | None = None, spec: Any = None
) -> str:
    """The first line of a command: which backend and namespace it uses.

    On the fake backend with a ``spec``, a second line names the pod's settings that a local
    process cannot honour (the image, a read-only root filesystem...), so nobody mistakes the
    local run for an isolated one.
    """
    loose: list[str] = []
    if backend.lower() == "fake":
        where = "fake (the command runs as a local process; the image is ignored)"
        if spec is not None:
            from podrunner.backends.fake.runtime_local import unenforced_settings
            from podrunner.manifest import build_manifests

            loose = unenforced_settings(build_manifests(spec).pod)
    else:
        where = "kubernetes"
        config = getattr(runner.backend, "_cluster", None)
        context = getattr(config, "context", None)
        if context:
            where += f" (context {context})"
    text = f"podrunner: backend {where}, namespace {namespace or runner.namespace}"
    if loose:
        text += "\npodrunner: not enforced on a local process: " + ", ".join(loose)
    return text


def _server_of(runner: Any) -> str | None:
    """The API server's URL, from the kubeconfig context in use (best effort)."""
    config = getattr(getattr(runner, "backend", None), "_cluster", None)
    if getattr(config, "source", None) == "in-cluster":
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        return f"https://{host}:{port}" if host else None
    kubeconfig = getattr(config, "kubeconfig", None) or {}
    wanted = getattr(config, "context", None)
    for entry in kubeconfig.get("contexts") or []:
        if entry.get("name") == wanted:
            cluster_name = (entry.get("context") or {}).get("cluster")
            for cluster in kubeconfig.get("clusters") or []:
                if cluster.get("name") == cluster_name:
                    server = (cluster.get("cluster") or {}).get("server")
                    return str(server) if server else None
    return None


def _connection_cause(exc: BaseException) -> str:
    """Why a connection failed, in a few words (the OS's words when there are some)."""
    import re

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return str(current.strerror).lower()
        current = current.__cause__ or current.__context__
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if match:
        return match.group(1).strip().lower()
    lowered = text.lower()
    for words, cause in (
        ("connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("certificate", "TLS certificate rejected"),
        ("ssl", "TLS handshake failed"),
        ("name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
    ):
        if words in lowered:
            return cause
    return "no answer"


def error_text(exc: BaseException, runner: Any = None) -> str:
    """One line for the user: the error's first line, or where and why a connection failed."""
    from podrunner.errors import BackendUnavailable

    if isinstance(exc, BackendUnavailable):
        server = _server_of(runner) if runner is not None else None
        where = f"the Kubernetes API server {server}" if server else "the Kubernetes API server"
        text = f"cannot reach {where}: {_connection_cause(exc)}"
        outage = getattr(getattr(runner, "retry", None), "outage", None)
        if isinstance(outage, (int, float)):
            text += f" (retried for {outage:g}s; --api-outage SECONDS waits longer)"
        return text
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _state_dict(state: Any) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "text": str(state),
        "phase": state.phase.value,
        "reason": None if state.reason is None else state.reason.value,
        "exit_code": state.exit_code,
        "detail": state.detail,
        "message": state.message,
        "node_name": state.node_name,
        "restart_count": state.restart_count,
    }


def error_dict(exc: BaseException, message: str) -> dict[str, Any]:
    """An error as the JSON document ``-o json`` prints: type, message, state, partial output."""
    from podrunner.errors import RunError

    doc: dict[str, Any] = {
        "ok": False,
        "error": {"type": type(exc).__name__, "message": message},
        "exit_code": None,
        "pod_name": None,
        "namespace": None,
        "run_id": None,
        "state": None,
        "events": [],
        "logs": "",
    }
    if isinstance(exc, RunError):
        doc.update(
            pod_name=exc.pod_name,
            namespace=exc.namespace,
            run_id=exc.run_id,
            state=_state_dict(exc.state),
            events=list(exc.events),
            logs=exc.logs,
            exit_code=None if exc.state is None else exc.state.exit_code,
        )
    return doc


class CommandErrors:
    """What :func:`run_errors` knows about the command: the runner (for messages), the format."""

    def __init__(self, verbose: bool, as_json: bool) -> None:
        self.verbose = verbose
        self.as_json = as_json
        self.runner: Any = None

    def fail(self, exc: BaseException, code: int) -> None:
        """Report ``exc`` (stderr line; JSON document on stdout with ``-o json``) and exit."""
        text = error_text(exc, self.runner)
        if self.verbose:
            import traceback

            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        click.echo(f"podrunner: error: {text}", err=True)
        rest = str(exc).strip().splitlines()[1:]
        if self.verbose and rest:
            click.echo("\n".join(rest), err=True)
        if self.as_json:
            click.echo(json.dumps(error_dict(exc, text), indent=2, ensure_ascii=False))
        sys.exit(code)


@contextmanager
def run_errors(verbose: bool, *, as_json: bool = False) -> Iterator[CommandErrors]:
    """Turn failures into one clear stderr line (a traceback with --verbose) and an exit status.

    SpecError and ConfigError exit 2, Ctrl-C 130, any other podrunner error 1. With ``as_json``
    a JSON document describing the error goes to stdout as well.
    """
    from podrunner.errors import PodrunnerError

    errors = CommandErrors(verbose, as_json)
    try:
        yield errors
    except (SpecError, ConfigError) as exc:
        errors.fail(exc, EXIT_USAGE)
    except KeyboardInterrupt:
        # Outside a run (StopSignals handles those): nothing of a run is left to delete.
        click.echo("podrunner: interrupted (SIGINT)", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except PodrunnerError as exc:
        errors.fail(exc, EXIT_FAILURE)
