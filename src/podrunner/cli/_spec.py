"""The options that describe a PodSpec, shared by ``run`` and ``manifest``."""

from __future__ import annotations

from typing import Any

import click

from podrunner.cli._group import F, parse_pairs

__all__ = ["HIDDEN", "build_spec", "spec_options"]


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
    from podrunner.spec import PodSpec, Resources

    return PodSpec(
        opts["image"],
        list(command),
        name=opts["name"],
        name_prefix=opts["name_prefix"],
        namespace=opts["namespace"],
        env=parse_pairs("--env", opts["env"]),
        secret_env=parse_pairs("--secret-env", opts["secret_env"], secret=True),
        labels=parse_pairs("--label", opts["labels"]),
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


def hide_secret(obj: dict[str, Any]) -> dict[str, Any]:
    # Not valid base64 on purpose: applying a hidden manifest fails instead of storing junk.
    if obj.get("kind") != "Secret":
        return obj
    out = dict(obj)
    for field in ("data", "stringData"):
        if field in out:
            out[field] = dict.fromkeys(out[field], HIDDEN)
    return out
