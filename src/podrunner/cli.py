"""The ``podrunner`` command.

One function per sub-command, registered on :data:`main` with ``@main.command``. Heavy
imports (``yaml``, the sdk's manifest code, later ``kubernetes`` and ``rich``) happen inside
the commands, so ``podrunner --help`` stays fast. Errors the user can fix (a bad spec) are
printed as one line on stderr with exit status 2, like click's own usage errors.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from podrunner import __version__
from podrunner.errors import ConfigError, SpecError

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn podrunner's input errors into one clear stderr line and exit status 2."""
    try:
        yield
    except (SpecError, ConfigError) as exc:
        click.echo(f"podrunner: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def _pairs(option: str, values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        out[key] = value
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="podrunner")
def main() -> None:
    """Run commands (Claude Code first) in ephemeral Kubernetes pods."""


@main.command()
def version() -> None:
    """Print podrunner's version."""
    click.echo(f"podrunner {__version__}")


def spec_options(func: F) -> F:
    """The options that describe a PodSpec, shared by every command that builds one."""
    options = [
        click.option("--image", required=True, help="Container image."),
        click.option("--name", help="Exact pod name (default: generated)."),
        click.option("--name-prefix", help="Prefix of the generated pod name."),
        click.option("--namespace", help="Namespace of the pod."),
        click.option("--env", "env", multiple=True, metavar="K=V", help="Environment variable."),
        click.option(
            "--secret-env",
            "secret_env",
            multiple=True,
            metavar="K=V",
            help="Secret environment variable (goes into a per-run Secret).",
        ),
        click.option("--label", "labels", multiple=True, metavar="K=V", help="Pod label."),
        click.option("--cpu-limit"),
        click.option("--memory-limit"),
        click.option("--cpu-request"),
        click.option("--memory-request"),
        click.option("--service-account"),
        click.option("--restart-policy", default="Never", show_default=True),
        click.option(
            "--image-pull-policy",
            type=click.Choice(["Always", "IfNotPresent", "Never"]),
            default="IfNotPresent",
            show_default=True,
        ),
        click.option(
            "--security",
            type=click.Choice(["restricted", "baseline", "none"]),
            default="restricted",
            show_default=True,
            help="Pod Security Standard to meet; 'none' opts out.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def build_spec(command: tuple[str, ...], **opts: Any) -> Any:
    """Build a PodSpec from the shared options (raises SpecError)."""
    from podrunner.sdk.spec import PodSpec, Resources

    return PodSpec(
        opts["image"],
        list(command),
        name=opts["name"],
        name_prefix=opts["name_prefix"],
        namespace=opts["namespace"],
        env=_pairs("--env", opts["env"]),
        secret_env=_pairs("--secret-env", opts["secret_env"]),
        labels=_pairs("--label", opts["labels"]),
        resources=Resources(
            cpu_limit=opts["cpu_limit"],
            memory_limit=opts["memory_limit"],
            cpu_request=opts["cpu_request"],
            memory_request=opts["memory_request"],
        ),
        service_account=opts["service_account"],
        restart_policy=opts["restart_policy"],
        image_pull_policy=opts["image_pull_policy"],
        security=opts["security"],
    )


@main.command(context_settings={"allow_interspersed_args": False})
@spec_options
@click.option("--run-id", help="Run id label (default: random).")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
)
@click.argument("command", nargs=-1, required=True)
def manifest(command: tuple[str, ...], run_id: str | None, output: str, **opts: Any) -> None:
    """Print the manifests a run would create: podrunner manifest --image IMG -- CMD...

    YAML output is one document per object (the Secret first, when there is one); JSON output
    is the Pod alone, or a v1 List when there are several objects.
    """
    from podrunner.sdk.manifest import build_manifests

    with user_errors():
        manifests = build_manifests(build_spec(command, **opts), run_id=run_id)
    objects = manifests.objects
    if output == "json":
        doc: dict[str, Any] = (
            objects[0]
            if len(objects) == 1
            else {"apiVersion": "v1", "kind": "List", "items": objects}
        )
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        import yaml

        click.echo(yaml.safe_dump_all(objects, sort_keys=False, allow_unicode=True), nl=False)


# -- backends ---------------------------------------------------------------------------------

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


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
            "(the image is ignored); kubernetes: a real cluster.",
        ),
        click.option(
            "--kubeconfig", metavar="PATH", help="Kubeconfig (default: the usual lookup)."
        ),
        click.option("--context", help="Kubeconfig context (default: the current one)."),
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
    backend: str, kubeconfig: str | None, context: str | None, namespace: str | None
) -> Any:
    """Build a PodRunner for the backend options (raises ConfigError for a bad kubeconfig)."""
    from podrunner.sdk.runner import PodRunner

    if backend.lower() == "fake":
        from podrunner.backends.fake import FakeCluster

        cluster = FakeCluster(runtime="local")
        return PodRunner(cluster.backend, namespace or "default")
    from podrunner.backends.kubernetes import KubernetesBackend
    from podrunner.sdk.cluster import ClusterConfig

    config = (
        ClusterConfig.from_kubeconfig_file(kubeconfig, context)
        if kubeconfig
        else ClusterConfig.default(context)
    )
    return PodRunner(KubernetesBackend(config), namespace or config.namespace)


def describe_backend(backend: str, runner: Any, namespace: str | None = None) -> str:
    """The first line of a command: which backend and namespace it uses."""
    if backend.lower() == "fake":
        where = "fake (the command runs as a local process; the image is ignored)"
    else:
        where = "kubernetes"
        config = getattr(runner.backend, "_cluster", None)
        context = getattr(config, "context", None)
        if context:
            where += f" (context {context})"
    return f"podrunner: backend {where}, namespace {namespace or runner.namespace}"


@contextmanager
def run_errors(verbose: bool) -> Iterator[None]:
    """Turn failures into one clear stderr line (a traceback with --verbose) and an exit status.

    SpecError and ConfigError exit 2, Ctrl-C 130, any other podrunner error 1.
    """
    from podrunner.errors import PodrunnerError

    try:
        yield
    except (SpecError, ConfigError) as exc:
        _report(exc, verbose)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("podrunner: interrupted; what the run created was deleted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except PodrunnerError as exc:
        _report(exc, verbose)
        sys.exit(EXIT_FAILURE)


def _report(exc: BaseException, verbose: bool) -> None:
    if verbose:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    first = str(exc).strip().splitlines()
    text = first[0] if first else type(exc).__name__
    click.echo(f"podrunner: error: {text}", err=True)
    if verbose and len(first) > 1:
        click.echo("\n".join(first[1:]), err=True)


# -- podrunner run ----------------------------------------------------------------------------


def _state_word(state: Any) -> str:
    """pending, scheduled, pulling, running, or how the run ended."""
    from podrunner.sdk.lifecycle import Phase

    if state.phase is Phase.PENDING:
        return "pending"
    if state.phase is Phase.SCHEDULED:
        if (
            state.detail in ("ContainerCreating", "PodInitializing")
            or "pull" in state.detail.lower()
        ):
            return "pulling"
        return "scheduled"
    if state.phase is Phase.RUNNING:
        return "running"
    return str(state).lower()


class StatusLine:
    """Shows the run's state on stderr: a live line on a terminal, plain lines otherwise.

    The live line is redrawn by a background thread (spinner, state, elapsed time) with rich
    styles; log lines written to stdout first erase it, so output and status never mix.
    """

    def __init__(self, live: bool, echo_logs: bool) -> None:
        import threading
        import time

        self._time = time.monotonic
        self._started = time.monotonic()
        self._live = live
        self._echo_logs = echo_logs
        self._word = "pending"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._shown = False
        self._thread: Any = None
        if live:
            from rich.console import Console

            self._console = Console(file=sys.stderr, force_terminal=True, highlight=False)
            self._thread = threading.Thread(target=self._loop, daemon=True, name="status-line")
            self._thread.start()

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return self._time() - self._started

    def _draw(self) -> None:
        from rich.text import Text

        frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
        frame = frames[int(self.elapsed() * 10) % len(frames)]
        line = Text.assemble(
            (f"{frame} ", "cyan"), (self._word, "bold"), (f"  {self.elapsed():.1f}s", "dim")
        )
        sys.stderr.write("\r\x1b[2K")
        self._console.print(line, end="")
        sys.stderr.flush()
        self._shown = True

    def _erase(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
            self._shown = False

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                self._draw()

    def state(self, state: Any) -> None:
        """Record a new state (``on_state`` callback)."""
        word = _state_word(state)
        with self._lock:
            if word == self._word and self._shown:
                return
            self._word = word
            if self._live:
                self._draw()
            else:
                extra = f" on {state.node_name}" if word == "scheduled" and state.node_name else ""
                click.echo(f"podrunner: [{self.elapsed():6.1f}s] {word}{extra}", err=True)

    def log(self, line: str) -> None:
        """Write one log line to stdout (``on_log`` callback)."""
        if not self._echo_logs:
            return
        with self._lock:
            self._erase()
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            if self._live:
                self._draw()

    def close(self) -> None:
        """Stop the live line and erase it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._erase()


def result_dict(result: Any) -> dict[str, Any]:
    """A RunResult as JSON-ready data."""
    state = result.state
    return {
        "pod_name": result.pod_name,
        "namespace": result.namespace,
        "run_id": result.run_id,
        "phase": state.phase.value,
        "reason": None if state.reason is None else state.reason.value,
        "exit_code": result.exit_code,
        "ok": result.ok,
        "duration": result.duration,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "message": result.message,
        "logs": result.logs,
        "logs_truncated": result.logs_truncated,
        "node_name": state.node_name,
        "restart_count": state.restart_count,
    }


@main.command(context_settings={"allow_interspersed_args": False})
@spec_options
@backend_options
@click.option("--timeout", type=float, metavar="SECONDS", help="Total seconds for the run.")
@click.option(
    "--cleanup",
    type=click.Choice(["always", "on-success", "never"]),
    default="always",
    show_default=True,
    help="What to delete afterwards (a pod still running is always deleted).",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: print the whole result as JSON instead of streaming the logs.",
)
@click.argument("command", nargs=-1, required=True)
def run(
    command: tuple[str, ...],
    backend: str,
    kubeconfig: str | None,
    context: str | None,
    verbose: bool,
    timeout: float | None,
    cleanup: str,
    output: str,
    **opts: Any,
) -> None:
    """Run a command in an ephemeral pod: podrunner run --image IMG -- CMD...

    The logs stream to stdout, the state and a summary go to stderr, and the exit status is
    the container's. Ctrl-C deletes what the run created and exits 130.
    """
    from podrunner.sdk.spec import CleanupPolicy

    with run_errors(verbose):
        spec = build_spec(command, **opts)
        runner = make_runner(backend, kubeconfig, context, None)
        click.echo(describe_backend(backend, runner, spec.namespace), err=True)
        status = StatusLine(live=sys.stderr.isatty(), echo_logs=output == "text")
        policy = {
            "always": CleanupPolicy.ALWAYS,
            "on-success": CleanupPolicy.ON_SUCCESS,
            "never": CleanupPolicy.NEVER,
        }[cleanup]
        try:
            result = runner.run(
                spec,
                timeout=timeout,
                cleanup=policy,
                on_log=status.log,
                on_state=status.state,
            )
        finally:
            status.close()
            runner.close()
        code = result.exit_code
        if output == "json":
            click.echo(json.dumps(result_dict(result), indent=2, ensure_ascii=False))
        kept = (
            " (kept)"
            if policy is CleanupPolicy.NEVER
            or (policy is CleanupPolicy.ON_SUCCESS and not result.ok)
            else ""
        )
        click.echo(
            f"podrunner: pod {result.pod_name}{kept}: {result.state} after {status.elapsed():.1f}s",
            err=True,
        )
    sys.exit(EXIT_FAILURE if code is None else code)


# -- podrunner reap ---------------------------------------------------------------------------


@main.command()
@backend_options
@namespace_option
@click.option(
    "--older-than",
    type=float,
    metavar="SECONDS",
    help="Also delete managed objects created more than SECONDS ago.",
)
def reap(
    backend: str,
    kubeconfig: str | None,
    context: str | None,
    verbose: bool,
    namespace: str | None,
    older_than: float | None,
) -> None:
    """Delete podrunner's pods, Secrets and ConfigMaps that outlived their runs."""
    with run_errors(verbose):
        runner = make_runner(backend, kubeconfig, context, namespace)
        click.echo(describe_backend(backend, runner), err=True)
        try:
            report = runner.reap(older_than=older_than)
        finally:
            runner.close()
    for kind, ns, name in report.deleted:
        click.echo(f"deleted {kind} {ns}/{name}")
    click.echo(f"podrunner: reaped {len(report.deleted)}, kept {report.kept}", err=True)


# -- podrunner claude -------------------------------------------------------------------------


@main.command()
@backend_options
@namespace_option
@click.argument("prompt")
@click.option("--image", help="Image with the claude CLI (default: $PODRUNNER_CLAUDE_IMAGE).")
@click.option("--model", help="Model name or alias.")
@click.option("--system-prompt", help="Replace the system prompt.")
@click.option("--append-system-prompt", help="Append to the system prompt.")
@click.option("--allowed-tool", "allowed_tools", multiple=True, help="Allowed tool (repeat).")
@click.option("--disallowed-tool", "disallowed_tools", multiple=True, help="Denied tool (repeat).")
@click.option("--max-turns", type=int, help="Stop after this many turns.")
@click.option("--max-budget-usd", type=float, help="Stop when the cost reaches this.")
@click.option("--permission-mode", help="Claude Code permission mode.")
@click.option("--json-schema", help="JSON schema (text or a .json file) for structured output.")
@click.option("--session-id", help="Session id (a UUID).")
@click.option("--resume", help="Resume this session.")
@click.option("--working-dir", help="Directory in the container.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds.")
@click.option("--cpu-limit")
@click.option("--memory-limit")
@click.option("--claude-path", default="claude", show_default=True, help="The CLI in the image.")
@click.option("--env", "env", multiple=True, metavar="K=V", help="Environment variable.")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: the answer, then cost and session id; json: the whole result.",
)
def claude(
    prompt: str,
    backend: str,
    kubeconfig: str | None,
    context: str | None,
    verbose: bool,
    namespace: str | None,
    output: str,
    env: tuple[str, ...],
    **opts: Any,
) -> None:
    """Ask Claude Code in an ephemeral pod: podrunner claude "PROMPT" ("-" reads stdin).

    Credentials come from $ANTHROPIC_API_KEY or $CLAUDE_CODE_OAUTH_TOKEN and go into a
    per-run Secret. Exit status: 0 success, 2 authentication, 3 budget or turn limit, 1 other.
    """
    from podrunner.claude.cli import cli_exit_code, format_cli_result, run_claude_cli

    if prompt == "-":
        prompt = sys.stdin.read()
    with run_errors(verbose):
        runner = make_runner(backend, kubeconfig, context, namespace)
        click.echo(describe_backend(backend, runner), err=True)
        try:
            result = run_claude_cli(runner, prompt, env=_pairs("--env", env), **opts)
        finally:
            runner.close()
    click.echo(format_cli_result(result, output="json" if output == "json" else "text"))
    sys.exit(cli_exit_code(result))


if __name__ == "__main__":  # pragma: no cover - `python -m podrunner.cli`
    main()
