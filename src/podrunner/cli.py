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


if __name__ == "__main__":  # pragma: no cover - `python -m podrunner.cli`
    main()
