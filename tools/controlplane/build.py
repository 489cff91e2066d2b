#!/usr/bin/env python3
"""Source-checkout shortcut for ``python -m podrunner.testing.controlplane build``.

The build tool and its Go wrapper modules live in ``src/podrunner/testing/controlplane/`` so
they ship in the wheel; this shim runs them from a checkout without installing anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from podrunner.testing.controlplane.build import main

if __name__ == "__main__":
    raise SystemExit(main(prog="tools/controlplane/build.py"))
