"""``python -m podrunner.testing.controlplane build|bin-dir``: see the package docstring."""

from __future__ import annotations

import sys

from podrunner.testing.controlplane.build import bin_dir, main

USAGE = (
    "usage: python -m podrunner.testing.controlplane build [--force] [--only NAME] [--nice N]\n"
    "       python -m podrunner.testing.controlplane bin-dir"
)


def run(argv: list[str]) -> int:
    """Dispatch the sub-command; an unknown one prints the usage and returns 2."""
    if argv[:1] == ["build"]:
        return main(argv[1:], prog="python -m podrunner.testing.controlplane build")
    if argv == ["bin-dir"]:
        print(bin_dir())
        return 0
    print(USAGE, file=sys.stderr)
    return 0 if argv[:1] in (["-h"], ["--help"]) else 2


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
