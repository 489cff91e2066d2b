"""The ``podrunner`` command.

One function per sub-command, registered on :data:`main` with ``@main.command``. Heavy
imports (``yaml``, the sdk's manifest code, later ``kubernetes`` and ``rich``) happen inside
the commands, so ``podrunner --help`` stays fast. Errors the user can fix (a bad spec) are
printed as one line on stderr with exit status 2, like click's own usage errors.

Stopping: SIGINT, SIGTERM and SIGHUP during ``run`` or ``claude`` delete what the run created,
print one line saying so and exit 130, 143 or 129; a second signal while that cleanup runs ends
it at once and says what may be left. A closed stdout (``podrunner run ... | head -1``) stops
the run the same way and exits 141, the status of a process killed by SIGPIPE.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click

from podrunner import __version__
from podrunner.errors import ConfigError, SpecError

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a process killed by SIGPIPE


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn podrunner's input errors into one clear stderr line and exit status 2."""
    try:
        yield
    except (SpecError, ConfigError) as exc:
        click.echo(f"podrunner: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _pairs(option: str, values: tuple[str, ...], *, secret: bool = False) -> dict[str, str]:
    """Parse ``KEY=VALUE`` items; a secret option's items are never shown in an error."""
    out: dict[str, str] = {}
    for index, item in enumerate(values, start=1):
        key, sep, value = item.partition("=")
        if not sep:
            if secret:
                # The user may have passed the value alone (`--secret-env sk-...`): name the
                # item by its position, never by its text.
                raise click.BadParameter(
                    f"expected NAME=VALUE in the {_ordinal(index)} {option}; "
                    "it has no '=' (its text is not shown: it may be a secret)",
                    param_hint=option,
                )
            raise click.BadParameter(f'expected KEY=VALUE, got "{item}"', param_hint=option)
        out[key] = value
    return out


def _quiet_broken_pipe() -> None:
    """Point stdout at /dev/null so nothing more (not even the exit flush) fails on it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class _Main(click.Group):
    """The command group; a reader that goes away (EPIPE) ends any command quietly."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _quiet_broken_pipe()
            sys.exit(EXIT_BROKEN_PIPE)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
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
        click.option("--cpu-limit", metavar="CPU", help="Container CPU limit, e.g. 500m or 2."),
        click.option(
            "--memory-limit", metavar="SIZE", help="Container memory limit, e.g. 256Mi or 1Gi."
        ),
        click.option("--cpu-request", metavar="CPU", help="Container CPU request, e.g. 100m."),
        click.option(
            "--memory-request", metavar="SIZE", help="Container memory request, e.g. 128Mi."
        ),
        click.option(
            "--service-account",
            metavar="NAME",
            help="Service account of the pod (default: the namespace's, with no token mounted).",
        ),
        click.option(
            "--restart-policy",
            default="Never",
            show_default=True,
            help="Never, OnFailure or Always (a container that keeps failing ends the run "
            "as CrashLoopBackOff).",
        ),
        click.option(
            "--image-pull-policy",
            type=click.Choice(["Always", "IfNotPresent", "Never"]),
            default="IfNotPresent",
            show_default=True,
            help="When the kubelet pulls the image.",
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
        secret_env=_pairs("--secret-env", opts["secret_env"], secret=True),
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


HIDDEN = "<hidden: --show-secrets prints it>"


def _hide_secret(obj: dict[str, Any]) -> dict[str, Any]:
    # Not valid base64 on purpose: applying a hidden manifest fails instead of storing junk.
    if obj.get("kind") != "Secret":
        return obj
    out = dict(obj)
    for field in ("data", "stringData"):
        if field in out:
            out[field] = dict.fromkeys(out[field], HIDDEN)
    return out


@main.command(context_settings={"allow_interspersed_args": False})
@spec_options
@click.option("--run-id", help="Run id label (default: random).")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="yaml: one document per object; json: the Pod, or a v1 List of all objects.",
)
@click.option(
    "--show-secrets",
    is_flag=True,
    help="Print the Secret's values (base64) instead of hiding them.",
)
@click.argument("command", nargs=-1, required=True)
def manifest(
    command: tuple[str, ...], run_id: str | None, output: str, show_secrets: bool, **opts: Any
) -> None:
    """Print the manifests a run would create: podrunner manifest --image IMG -- CMD...

    YAML output is one document per object (the Secret first, when there is one); JSON output
    is the Pod alone, or a v1 List when there are several objects. Secret values are hidden
    unless --show-secrets is given.
    """
    from podrunner.sdk.manifest import build_manifests

    with user_errors():
        manifests = build_manifests(build_spec(command, **opts), run_id=run_id)
    objects = manifests.objects if show_secrets else [_hide_secret(o) for o in manifests.objects]
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

FAKE_KEEPS_NOTHING = "the fake backend's pods live in this process and end with it"


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


def close_runner(runner: Any) -> None:
    """Close the runner and its backend; on the fake this ends its local processes and dirs."""
    try:
        runner.close()
    finally:
        runner.backend.close()


def _is_fake(runner: Any) -> bool:
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
            from podrunner.sdk.manifest import build_manifests

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
        return f"cannot reach {where}: {_connection_cause(exc)}"
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


# -- stopping: signals and a closed stdout ----------------------------------------------------


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP (and, for ``run``, a closed stdout) while a run is going on.

    The first signal raises in the main thread (``KeyboardInterrupt`` for SIGINT,
    :class:`~podrunner.signals.Terminated` for the others), so the runner's cleanup runs as the
    exception passes. A second one while that cleanup is still going ends the command at once
    with ``128 + signal``, after one line naming what may be left. The previous handlers are
    restored on exit.

    A closed stdout is noticed by the thread that writes the log; :meth:`stdout_closed` turns
    it into SIGPIPE for the main thread, which may be blocked reading the pod's watch.
    """

    SIGNALS = tuple(
        getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
    )

    def __init__(self, may_be_left: str, *, pipe: bool = False) -> None:
        self.signum: int | None = None
        self.cleaning = False
        self.may_be_left = may_be_left
        self._pipe = pipe and hasattr(signal, "SIGPIPE")
        self._previous: list[tuple[int, Any]] = []

    def __enter__(self) -> StopSignals:
        for signum in self.SIGNALS:
            # An ignored signal stays ignored: `nohup` and `&` in a script rely on it.
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous.append((signum, signal.signal(signum, self._handle)))
        if self._pipe:
            # Python itself ignores SIGPIPE (writes fail with EPIPE instead); only our own
            # stdout_closed() sends it, and an EPIPE write still fails as before.
            self._previous.append((signal.SIGPIPE, signal.signal(signal.SIGPIPE, self._handle)))
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in reversed(self._previous):
            signal.signal(signum, handler)

    def stdout_closed(self) -> None:
        """Stop the run because stdout's reader went away (callable from any thread)."""
        if self._pipe and self.signum is None:
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGPIPE)

    def _handle(self, signum: int, frame: object) -> None:
        from podrunner.signals import Terminated

        if self.signum is None:
            self.signum = signum
            self.cleaning = True
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise Terminated(signum)
        if self._pipe and signum == signal.SIGPIPE:
            return  # the same closed stdout, noticed again
        if self.cleaning:
            # Plain os.write: this may run in the middle of any other write.
            os.write(
                2,
                f"podrunner: {_signal_name(signum)} again: cleanup stopped; may be left: "
                f"{self.may_be_left} (`podrunner reap` deletes them once they expire)\n".encode(),
            )
        # os._exit skips atexit: end the fake's local processes and run directories first.
        local = sys.modules.get("podrunner.backends.fake.runtime_local")
        if local is not None:
            local._LIVE.at_exit()
        os._exit(128 + signum)

    def cleaned(self) -> None:
        """The cleanup is over: a further signal just ends the command."""
        self.cleaning = False


def _names(targets: list[tuple[str, str, str]]) -> str:
    parts = [f"{kind} {namespace}/{name}" for kind, namespace, name in targets]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _cleanup_failure(exc: BaseException) -> str | None:
    for note in getattr(exc, "__notes__", ()):
        if "cleanup also failed" in note:
            return str(note)
    return None


def _warn_unread_stdin(hint: str) -> bool:
    """Warn (once) when stdin is a pipe or a file with data that nobody will read."""
    try:
        fd = sys.stdin.fileno()
        if os.isatty(fd):
            return False
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            waiting = os.fstat(fd).st_size > os.lseek(fd, 0, os.SEEK_CUR)
        elif stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            import array
            import fcntl
            import termios

            count = array.array("i", [0])
            fcntl.ioctl(fd, termios.FIONREAD, count)
            waiting = count[0] > 0
        else:
            return False
    except (AttributeError, ImportError, OSError, ValueError):
        return False
    if waiting:
        click.echo(f"podrunner: warning: stdin is not read; {hint}", err=True)
    return waiting


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
    styles; log lines written to stdout first erase it, so output and status never mix. When
    stdout's reader goes away (EPIPE), ``pipe_closed`` is set and ``on_pipe_closed`` called.
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
        # A pipe is flushed at most every 50 ms: a flush per line made 2M lines take seconds.
        self._flush_every_line = sys.stdout.isatty()
        self._flushed = self._started
        self._thread: Any = None
        self.pipe_closed = False
        self.on_pipe_closed: Callable[[], None] | None = None
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
        if not self._echo_logs or self.pipe_closed:
            return
        with self._lock:
            self._erase()
            try:
                sys.stdout.write(line + "\n")
                now = self._time()
                if self._flush_every_line or now - self._flushed >= 0.05:
                    sys.stdout.flush()
                    self._flushed = now
            except BrokenPipeError:
                self._close_pipe()
                return
            if self._live:
                self._draw()

    def _close_pipe(self) -> None:
        # Like a Unix tool whose reader went away (`| head -1`): stop, quietly.
        self.pipe_closed = True
        _quiet_broken_pipe()
        if self.on_pipe_closed is not None:
            self.on_pipe_closed()

    def close(self) -> None:
        """Stop the live line and erase it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._erase()
            if self._echo_logs and not self.pipe_closed:
                try:
                    sys.stdout.flush()
                except BrokenPipeError:
                    self._close_pipe()


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


def exit_status(result: Any) -> int:
    """The command's exit status for a result: the container's, and never 0 for a failed run.

    A run can fail with exit code 0 (``CrashLoopBackOff`` of ``restartPolicy: Always``, a pod
    evicted after its container exited 0) or with no exit code at all: both give 1.
    """
    code = result.exit_code
    if result.ok:
        return 0
    return code if code else EXIT_FAILURE


@main.command(context_settings={"allow_interspersed_args": False})
@spec_options
@backend_options
@click.option("--timeout", type=float, metavar="SECONDS", help="Total seconds for the run.")
@click.option(
    "--cleanup",
    type=click.Choice(["always", "on-success", "never"]),
    default="always",
    show_default=True,
    help="What to delete when the run ends by itself. A run stopped by Ctrl-C, SIGTERM, "
    "SIGHUP or a closed stdout is always deleted; the fake backend keeps nothing.",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: print the whole result (or the error) as JSON instead of streaming the logs.",
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
    the container's (1 for a run that failed with exit code 0 or none). Stdin is not passed to
    the command. Ctrl-C, SIGTERM and SIGHUP delete what the run created and exit 130, 143 and
    129; a closed stdout (`| head -1`) does the same and exits 141.
    """
    as_json = output == "json"
    with run_errors(verbose, as_json=as_json) as errors:
        spec = build_spec(command, **opts)
        runner = make_runner(backend, kubeconfig, context, None)
        errors.runner = runner
        try:
            click.echo(describe_backend(backend, runner, spec.namespace, spec), err=True)
            code = _run(runner, spec, timeout=timeout, cleanup=cleanup, as_json=as_json)
        finally:
            close_runner(runner)
    sys.exit(code)


def _run(runner: Any, spec: Any, *, timeout: float | None, cleanup: str, as_json: bool) -> int:
    """Run ``spec`` for ``podrunner run``; returns the exit status (or exits when stopped)."""
    import attrs

    from podrunner.sdk.manifest import build_manifests
    from podrunner.sdk.spec import CleanupPolicy
    from podrunner.signals import Terminated

    policy = CleanupPolicy(cleanup)
    hint = "the command gets no input (podrunner run does not pass stdin on)"
    warned = _warn_unread_stdin(hint)
    # Name the run's objects up front, so a stop at any moment can say what it deleted.
    planned = build_manifests(spec)
    spec = attrs.evolve(spec, name=planned.pod_name, name_prefix=None)
    namespace = spec.namespace or runner.namespace
    targets = [("pod", namespace, planned.pod_name)]
    for kind, obj in (("Secret", planned.secret), ("ConfigMap", planned.config_map)):
        if obj is not None:
            targets.append((kind, namespace, obj["metadata"]["name"]))
    status = StatusLine(live=sys.stderr.isatty(), echo_logs=not as_json)
    with StopSignals(may_be_left=_names(targets), pipe=True) as stop:
        status.on_pipe_closed = stop.stdout_closed
        try:
            try:
                handle = runner.start(
                    spec,
                    timeout=timeout,
                    cleanup=policy,
                    on_log=status.log,
                    on_state=status.state,
                    run_id=planned.run_id,
                )
                with handle:
                    result = handle.wait()
            finally:
                status.close()
        except (KeyboardInterrupt, Terminated) as exc:
            _stopped(runner, stop, exc, targets, policy, as_json=as_json and not status.pipe_closed)
        if not warned:
            _warn_unread_stdin(hint)
        if as_json:
            click.echo(json.dumps(result_dict(result), indent=2, ensure_ascii=False))
        kept = policy is CleanupPolicy.NEVER or (
            policy is CleanupPolicy.ON_SUCCESS and not result.ok
        )
        if kept:
            note = f" (not kept: {FAKE_KEEPS_NOTHING})" if _is_fake(runner) else " (kept)"
        else:
            note = ""
        click.echo(
            f"podrunner: pod {result.pod_name}{note}: {result.state} after {status.elapsed():.1f}s",
            err=True,
        )
        return exit_status(result)


def _stopped(
    runner: Any,
    stop: StopSignals,
    exc: BaseException,
    targets: list[tuple[str, str, str]],
    policy: Any,
    *,
    as_json: bool,
) -> NoReturn:
    """A run stopped by a signal or a closed stdout: make sure it is deleted, say so, exit."""
    from podrunner.errors import BackendError, NotFound
    from podrunner.sdk.spec import CleanupPolicy

    failure = _cleanup_failure(exc)
    if policy is not CleanupPolicy.ALWAYS and failure is None:
        # The runner keeps what the policy says to keep; a stopped run is deleted regardless.
        for kind, namespace, name in targets:
            try:
                runner.backend.delete(
                    "Pod" if kind == "pod" else kind, namespace, name, grace_period_seconds=0
                )
            except NotFound:
                pass
            except BackendError as err:
                failure = failure or f"cleanup also failed: {error_text(err, runner)}"
    _say_stopped(stop, exc, _names(targets), failure, as_json=as_json)


def _say_stopped(
    stop: StopSignals, exc: BaseException, what: str, failure: str | None, *, as_json: bool
) -> NoReturn:
    """The one line (and JSON document) of a stopped run, then exit ``128 + signal``."""
    stop.cleaned()
    signum = stop.signum if stop.signum is not None else signal.SIGINT
    pipe = hasattr(signal, "SIGPIPE") and signum == signal.SIGPIPE
    why = "stdout closed" if pipe else f"interrupted ({_signal_name(signum)})"
    if failure is None:
        text = f"{why}; deleted {what}"
    else:
        text = f"{why}; {failure}; may be left: {what} (`podrunner reap` deletes them once expired)"
    click.echo(f"podrunner: {text}", err=True)
    if as_json:
        click.echo(json.dumps(error_dict(exc, text), indent=2, ensure_ascii=False))
    sys.exit(128 + signum)


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
    with run_errors(verbose) as errors:
        runner = make_runner(backend, kubeconfig, context, namespace)
        errors.runner = runner
        try:
            click.echo(describe_backend(backend, runner), err=True)
            report = runner.reap(older_than=older_than)
        finally:
            close_runner(runner)
    for kind, ns, name in report.deleted:
        click.echo(f"deleted {kind} {ns}/{name}")
    note = f" ({FAKE_KEEPS_NOTHING}: nothing is ever left to reap)" if _is_fake(runner) else ""
    click.echo(f"podrunner: reaped {len(report.deleted)}, kept {report.kept}{note}", err=True)


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
@click.option("--cpu-limit", metavar="CPU", help="Container CPU limit, e.g. 500m or 2.")
@click.option("--memory-limit", metavar="SIZE", help="Container memory limit, e.g. 1Gi.")
@click.option("--claude-path", default="claude", show_default=True, help="The CLI in the image.")
@click.option("--env", "env", multiple=True, metavar="K=V", help="Environment variable.")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: the answer on stdout, errors and cost on stderr; json: the whole result "
    "(or the error).",
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

    The answer goes to stdout; errors, the cost and the session id to stderr. Credentials come
    from $ANTHROPIC_API_KEY or $CLAUDE_CODE_OAUTH_TOKEN and go into a per-run Secret. Exit
    status: 0 success, 2 authentication, 3 budget or turn limit, 1 other; Ctrl-C, SIGTERM and
    SIGHUP delete the run and exit 130, 143 and 129.
    """
    from podrunner.claude.cli import (
        IMAGE_ENV,
        cli_exit_code,
        format_cli_answer,
        format_cli_notes,
        format_cli_result,
        run_claude_cli,
    )
    from podrunner.claude.credentials import ClaudeCredentials
    from podrunner.signals import Terminated

    as_json = output == "json"
    extra_env = _pairs("--env", env)
    if not (opts["image"] or os.environ.get(IMAGE_ENV)):
        raise click.UsageError(f"Missing option '--image' (or set ${IMAGE_ENV}).")
    if prompt == "-":
        prompt = sys.stdin.read()
    else:
        _warn_unread_stdin('the prompt is the argument (give "-" as the PROMPT to read stdin)')
    if ClaudeCredentials.from_environment() is None:
        click.echo(
            "podrunner: warning: no Claude credential: set ANTHROPIC_API_KEY or "
            "CLAUDE_CODE_OAUTH_TOKEN (Claude Code will likely fail to log in)",
            err=True,
        )
    with run_errors(verbose, as_json=as_json) as errors:
        runner = make_runner(backend, kubeconfig, context, namespace)
        errors.runner = runner
        try:
            click.echo(describe_backend(backend, runner), err=True)
            what = "the run's pod and the Secret and ConfigMap it created"
            with StopSignals(may_be_left=what) as stop:
                try:
                    result = run_claude_cli(runner, prompt, env=extra_env, **opts)
                except (KeyboardInterrupt, Terminated) as exc:
                    _say_stopped(stop, exc, what, _cleanup_failure(exc), as_json=as_json)
        finally:
            close_runner(runner)
    if as_json:
        click.echo(format_cli_result(result, output="json"))
    else:
        answer = format_cli_answer(result)
        if answer:
            click.echo(answer)
        notes = format_cli_notes(result)
        if notes:
            click.echo(notes, err=True)
    sys.exit(cli_exit_code(result))


if __name__ == "__main__":  # pragma: no cover - `python -m podrunner.cli`
    main()
