"""``podrunner reap``: delete what crashed or killed runs left behind."""

from __future__ import annotations

import click

from podrunner.cli import _backend
from podrunner.cli._backend import (
    FAKE_KEEPS_NOTHING,
    backend_options,
    close_runner,
    describe_backend,
    is_fake,
    namespace_option,
    run_errors,
)
from podrunner.cli._group import main

__all__ = ["reap"]


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
    api_outage: float,
    verbose: bool,
    namespace: str | None,
    older_than: float | None,
) -> None:
    """Delete podrunner's pods, Secrets, ConfigMaps and NetworkPolicies past their expiry."""
    with run_errors(verbose) as errors:
        runner = _backend.make_runner(
            backend, kubeconfig, context, namespace, api_outage=api_outage
        )
        errors.runner = runner
        try:
            click.echo(describe_backend(backend, runner), err=True)
            report = runner.reap(older_than=older_than)
        finally:
            close_runner(runner)
    for kind, ns, name in report.deleted:
        click.echo(f"deleted {kind} {ns}/{name}")
    note = f" ({FAKE_KEEPS_NOTHING}: nothing is ever left to reap)" if is_fake(runner) else ""
    click.echo(f"podrunner: reaped {len(report.deleted)}, kept {report.kept}{note}", err=True)
    if report.skipped:
        kinds = ", ".join(report.skipped)
        click.echo(f"podrunner: not allowed to list {kinds}: not examined", err=True)
