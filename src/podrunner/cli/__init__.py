"""The ``podrunner`` command: one module per sub-command, registered on :data:`main`.

``_group`` holds the command group and its exit statuses, ``_spec`` the PodSpec options,
``_backend`` where a command runs and how its errors read, ``_status`` the status line and the
signals; ``run``, ``manifest``, ``reap`` and ``claude`` are the sub-commands. Heavy imports
(``yaml``, the manifest code, later ``kubernetes`` and ``rich``) happen inside the commands, so
``podrunner --help`` stays fast. Errors the user can fix (a bad spec) are printed as one line on
stderr with exit status 2, like click's own usage errors.

Stopping: SIGINT, SIGTERM and SIGHUP during ``run`` or ``claude`` delete what the run created,
print one line saying so and exit 130, 143 or 129; a second signal while that cleanup runs ends
it at once and says what may be left. A closed stdout (``podrunner run ... | head -1``) stops
the run the same way and exits 141, the status of a process killed by SIGPIPE.
"""

from __future__ import annotations

# Importing the sub-command modules registers their commands on `main`.
from podrunner.cli import claude, manifest, reap, run  # noqa: F401
from podrunner.cli._group import main

__all__ = ["main"]
