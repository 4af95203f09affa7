"""An A/B of two versions of grantflow on one database: both served at once, wrk alternating between them.

    git worktree add /tmp/base HEAD~1
    python bench/ab.py --base /tmp/base/src --backend sqlite --scenarios get_request,status

This machine's speed drifts by a fifth from minute to minute, so the suite's runs of one commit after the other
(minutes apart, each on its own fresh database) can disagree by more than a change gains. Here both servers read
the same seeded database and each round measures A then B (the next round B then A) for a few seconds each, so
drift hits both alike; each pass starts both servers anew, as two processes of the same code differ by up to a
tenth here (an A/A run shows it: `--base` this checkout's own src).
Prints each side's median req/s and server CPU per request, and B's ratio to A. Only for scenarios that read:
writes would change what the other side then reads.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import run as suite
import seed as seeding

READS = {"jwks", "status", "get_request", "active_approvals", "search", "settings"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the src directory of the version to compare against (A)")
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--scenarios", default="get_request")
    parser.add_argument("--passes", type=int, default=3, help="fresh server processes per pass")
    parser.add_argument("--rounds", type=int, default=4, help="A and B runs per scenario and pass")
    parser.add_argument("--seconds", type=float, default=3)
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")
    if unknown := set(scenarios) - READS:
        parser.error(f"only scenarios that read: not {', '.join(sorted(unknown))}")

    data_dir = Path(tempfile.mkdtemp(prefix="grantflow-ab-"))
    try:
        env = suite.seeded(args.backend, args.scale, data_dir).env
        here = str(Path(suite.__file__).resolve().parents[1] / "src")
        _compare(args, scenarios, env, {"A": args.base, "B": here})
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


Samples = dict[str, dict[str, list[tuple[float, float]]]]  # scenario -> side -> (req/s, CPU ms per request)


def _compare(args: argparse.Namespace, scenarios: list[str], env: dict[str, str], sources: dict[str, str]) -> None:
    samples: Samples = {scenario: {"A": [], "B": []} for scenario in scenarios}
    for _ in range(args.passes):  # new processes each pass: two processes of the same code differ too
        _measure_pass(args, scenarios, env, sources, samples)
    for scenario, sides in samples.items():
        (a, a_cpu), (b, b_cpu) = (_medians(sides[side]) for side in ("A", "B"))
        print(f"{scenario:18} A {a:7.0f} req/s {a_cpu:5.2f} ms   B {b:7.0f} req/s {b_cpu:5.2f} ms   B/A {b / a:4.2f}")


def _medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r for r, _ in runs), statistics.median(c for _, c in runs)


def _measure_pass(
    args: argparse.Namespace, scenarios: list[str], env: dict[str, str], sources: dict[str, str], samples: Samples
) -> None:
    with ExitStack() as stack:
        servers, contexts = {}, {}
        for side, src in sources.items():
            base = f"http://127.0.0.1:{suite.free_port()}"
            command = [sys.executable, "-m", "grantflow", "serve", "--port", base.rsplit(":", 1)[1]]
            ready = f"{base}{suite.WE}/status"
            servers[side] = stack.enter_context(suite.process(command, {**env, "PYTHONPATH": src}, ready))
            contexts[side] = suite.Context(base=base)
        tokens = {"admin": suite.token(contexts["A"].base, "admin", suite.ADMIN_PASSWORD)}
        for user in (suite.READER, suite.DECIDER):
            tokens[user] = suite.token(contexts["A"].base, user, f"{user}-password")
        for ctx in contexts.values():
            ctx.tokens.update(tokens)
            ctx.ids["own_request"] = seeding.request_id(2000)
        for scenario in scenarios:
            for ctx in contexts.values():  # warm up: the first seconds of a process are slower
                suite.wrk(ctx.base, suite.lua(scenario, ctx), suite.SATURATION_CONNECTIONS, 1)
            for round_ in range(args.rounds):
                # A, B, then B, A: whichever runs second in a round must not always be the same side.
                for side in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
                    ctx, pid = contexts[side], servers[side].pid
                    before = suite.tree_cpu_seconds(pid)
                    run = suite.wrk(ctx.base, suite.lua(scenario, ctx), suite.SATURATION_CONNECTIONS, args.seconds)
                    spent = suite.tree_cpu_seconds(pid) - before
                    samples[scenario][side].append((run.rps, 1000 * spent / max(run.requests, 1)))


if __name__ == "__main__":
    main()
