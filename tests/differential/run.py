"""The long differential run (``nox -s differential``): figures into benchmarks/results/latest.json.

Starts a local kwok control plane, runs ``--seeds`` sequences (300 by default) on it and on the
fake, shrinks the most frequent root causes to minimal reproductions, prints the report and
merges its figures under ``differential`` (other keys are kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

import harness  # noqa: E402

from podrunner.backends.kubernetes import KubernetesBackend  # noqa: E402
from podrunner.sdk.cluster import ClusterConfig  # noqa: E402
from podrunner.testing.kwok import KwokCluster  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "latest.json"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--length", type=int, default=25)
    parser.add_argument("--shrink", type=int, default=5, help="root causes to minimise")
    parser.add_argument("--kubeconfig", help="an existing cluster instead of a new kwok one")
    args = parser.parse_args(argv)
    if args.kubeconfig:
        return _run(args, args.kubeconfig)
    with KwokCluster() as cluster:
        return _run(args, str(cluster.kubeconfig))


def _run(args: argparse.Namespace, kubeconfig: str) -> int:
    start = time.monotonic()
    with KubernetesBackend(ClusterConfig.from_kubeconfig_file(kubeconfig)) as backend:
        report = harness.differential(
            backend,
            list(range(args.first_seed, args.first_seed + args.seeds)),
            token=secrets.token_hex(3),
            length=args.length,
            shrink_causes=args.shrink,
        )
    print(report.summary())
    fake_cps = report.fake_calls / report.fake_seconds
    server_cps = report.server_calls / report.server_seconds
    figures = {
        "sequences": args.seeds,
        "calls_compared": report.compared,
        "calls_disagreeing": report.disagreed,
        "disagreement_percent": round(100 * report.rate, 2),
        "root_causes": len(report.causes),
        "causes": dict(report.causes.most_common()),
        "fake_calls_per_s": round(fake_cps),
        "server_calls_per_s": round(server_cps, 1),
        "fake_speedup_per_call": round(fake_cps / server_cps, 1),
        "wall_s": round(time.monotonic() - start, 1),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data["differential"] = figures  # merge: the other benchmarks' keys stay
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
