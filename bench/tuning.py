"""Process tuning, measured: the garbage collector frozen after start-up with a larger young generation, and the
access log off, against the untuned server in the same run (docs/performance.md).

    python bench/tuning.py [--backend sqlite] [--scale 10000] [--seconds 5]

One seeded database; `grantflow serve` started once per variant, each measured by wrk (bench/run.py's
saturation and half-load runs) on GET /requests/{id} and /status. The untuned server runs first and last, so
the drift of the machine over the run shows. Prints CPU time per request and its ratio to the first untuned run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import run
import seed as seeding

VARIANTS = [
    ("untuned (CPython gc, access log)", {"GRANTFLOW_GC_GEN0_THRESHOLD": "0", "GRANTFLOW_ACCESS_LOG": "true"}),
    ("gc frozen, gen0 50,000", {"GRANTFLOW_GC_GEN0_THRESHOLD": "50000", "GRANTFLOW_ACCESS_LOG": "true"}),
    ("gc frozen, no access log", {"GRANTFLOW_GC_GEN0_THRESHOLD": "50000", "GRANTFLOW_ACCESS_LOG": "false"}),
    ("untuned again", {"GRANTFLOW_GC_GEN0_THRESHOLD": "0", "GRANTFLOW_ACCESS_LOG": "true"}),
]
SCENARIOS = ("get_request", "status")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--scale", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="grantflow-tuning-"))
    try:
        base_env = run.seeded(args.backend, args.scale, data_dir).env
        first: dict[str, float] = {}
        for name, settings in VARIANTS:
            port = run.free_port()
            base = f"http://127.0.0.1:{port}"
            serve = [sys.executable, "-m", "grantflow", "serve", "--port", str(port)]
            with run.process(serve, {**base_env, **settings}, f"{base}{run.WE}/status") as server:
                ctx = run.Context(base=base)
                ctx.tokens[run.READER] = run.token(base, run.READER, f"{run.READER}-password")
                ctx.ids["own_request"] = seeding.request_id(2000)
                print(name, flush=True)
                for scenario in SCENARIOS:
                    _, _, cpu = run.measure(scenario, base, run.lua(scenario, ctx), server.pid, args.seconds)
                    first.setdefault(scenario, cpu)
                    print(f"  {'':26} {cpu / first[scenario]:8.2f}x the first untuned run's CPU per request")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
