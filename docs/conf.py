"""Sphinx configuration: MyST Markdown, furo, API reference from Google-style docstrings."""

from __future__ import annotations

import json
from pathlib import Path

project = "podrunner"
author = "podrunner developers"
copyright = "2026, podrunner developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "rbac"]
html_theme = "furo"
html_title = "podrunner"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_typehints = "description"
autodoc_member_order = "bysource"
# No inventories: the build must not need the network (set one here when it may).
intersphinx_mapping: dict[str, tuple[str, None]] = {}
# No network during the build: intersphinx inventories are optional.
intersphinx_disabled_reftypes = ["*"]
nitpicky = False
suppress_warnings = ["myst.xref_missing"]


def _performance_table() -> str:
    """Render benchmarks/results/latest.json, so the docs quote measured figures only."""
    path = Path(__file__).parent.parent / "benchmarks" / "results" / "latest.json"
    if not path.exists():
        return "No benchmark results recorded yet: run `nox -s bench`."
    data = json.loads(path.read_text())
    meta = data.pop("_meta", {})
    lines = [
        f"Measured {meta.get('date', '?')} on {meta.get('machine', '?')}, "
        f"Python {meta.get('python', '?')}.",
        "",
        "| benchmark | figure | value |",
        "|---|---|---|",
    ]
    for bench, figures in sorted(data.items()):
        if not isinstance(figures, dict):
            continue
        for key, value in figures.items():
            if isinstance(value, float):
                value = f"{value:,.4g}"
            lines.append(f"| {bench} | {key} | {value} |")
    return "\n".join(lines)


Path(__file__).parent.joinpath("_generated").mkdir(exist_ok=True)
Path(__file__).parent.joinpath("_generated", "performance-table.md").write_text(
    _performance_table() + "\n"
)

# `-n` stays on for links the reference can resolve. Intersphinx is off (no network in the
# build), so standard-library targets cannot resolve; internal classes that are not part of the
# API reference, and the short names napoleon takes from "Returns:" prose, cannot either.
nitpick_ignore_regex = [
    (r"py:.*", r"(collections|pathlib|threading|typing|types|time|os|subprocess)(\..*)?"),
    (r"py:.*", r"podrunner\.(backends|testing|sdk)\..*"),
    (r"py:.*", r"podrunner\.(RunError|SpecError|errors\..*)"),
    (r"py:class", r"(FakeCluster|VirtualClock|RealTimeClock|Phase|The rule|The default namespace)"),
    (r"py:class", r"(Manifests|LogCallback|StateCallback|Source|kubernetes\..*)"),
    (r"py:attr", r"PodState\..*"),
]
