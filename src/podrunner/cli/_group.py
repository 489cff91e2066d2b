"""The ``podrunner`` command group, its exit statuses and the one-line input errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from podrunner import __version__
from podrunner.errors import ConfigError, SpecError

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_USAGE", "main", "user_errors", "version"]

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


def parse_pairs(option: str, values: tuple[str, ...], *, secret: bool = False) -> dict[str, str]:
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


def quiet_broken_pipe() -> None:
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
            quiet_broken_pipe()
            sys.exit(EXIT_BROKEN_PIPE)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="podrunner")
def main() -> None:
    """Run commands (Claude Code first) in ephemeral Kubernetes pods."""


@main.command()
def version() -> None:
    """Print podrunner's version."""
    click.echo(f"podrunner {__version__}")
