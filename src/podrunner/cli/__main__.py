"""``python -m podrunner.cli``: the ``podrunner`` command."""

from __future__ import annotations

from podrunner.cli import main

if __name__ == "__main__":  # pragma: no branch
    main(prog_name="podrunner")
