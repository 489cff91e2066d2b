"""``podrunner manifest``: print the objects a run would create, without a cluster."""

from __future__ import annotations

import json
from typing import Any

import click

from podrunner.cli._group import main, user_errors
from podrunner.cli._spec import build_spec, hide_secret, spec_options

__all__ = ["manifest"]


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
    from podrunner.manifest import build_manifests

    with user_errors():
        manifests = build_manifests(build_spec(command, **opts), run_id=run_id)
    objects = manifests.objects if show_secrets else [hide_secret(o) for o in manifests.objects]
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
