"""podrunner: run agent CLIs and any command in ephemeral Kubernetes pods."""

from __future__ import annotations

from podrunner import errors

__version__ = "0.1.0"

__all__ = ["__version__", "errors"]
