"""``podrunner run``: run a command in a pod, stream its output, exit with its status."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from podrunner.cli import _backend
from podrunner.cli._backend import (
    EXIT_FAILURE,
    FAKE_KEEPS_NOTHING,
    backend_options,
    close_runner,
    describe_backend,
    error_text,
    is_fake,
    run_errors,
)
from podrunner.cli._group import main
from podrunner.cli._spec import build_spec, spec_options
from podrunner.cli._status import (
    StatusLine,
    StopSignals,
    cleanup_failure,
    say_stopped,
    target_names,
    warn_unread_stdin,
)

__all__ = ["exit_status", "result_dict", "run"]


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
    api_outage: float,
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
        runner = _backend.make_runner(backend, kubeconfig, context, None, api_outage=api_outage)
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

    from podrunner.manifest import build_manifests
    from podrunner.signals import Terminated
    from podrunner.spec import CleanupPolicy

    policy = CleanupPolicy(cleanup)
    hint = "the command gets no input (podrunner run does not pass stdin on)"
    warned = warn_unread_stdin(hint)
    # Name the run's objects up front, so a stop at any moment can say what it deleted.
    planned = build_manifests(spec, egress=runner.egress)
    spec = attrs.evolve(spec, name=planned.pod_name, name_prefix=None)
    namespace = spec.namespace or runner.namespace
    targets = [("pod", namespace, planned.pod_name)]
    for obj in planned.extras:
        targets.append((obj["kind"], namespace, obj["metadata"]["name"]))
    status = StatusLine(live=sys.stderr.isatty(), echo_logs=not as_json)
    with StopSignals(may_be_left=target_names(targets), pipe=True) as stop:
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
            warn_unread_stdin(hint)
        if as_json:
            click.echo(json.dumps(result_dict(result), indent=2, ensure_ascii=False))
        kept = policy is CleanupPolicy.NEVER or (
            policy is CleanupPolicy.ON_SUCCESS and not result.ok
        )
        if kept:
            note = f" (not kept: {FAKE_KEEPS_NOTHING})" if is_fake(runner) else " (kept)"
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
    from podrunner.spec import CleanupPolicy

    failure = cleanup_failure(exc)
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
    say_stopped(stop, exc, target_names(targets), failure, as_json=as_json)
