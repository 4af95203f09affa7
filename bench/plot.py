"""Draw the PNGs of docs/performance.md from a bench/run.py result file.

python bench/plot.py bench/results/<file>.json [more.json ...] docs/perf
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _by(results: list[dict[str, Any]], backend: str, scale: int, workers: int = 1) -> dict[str, dict[str, Any]]:
    return {
        r["scenario"]: r for r in results if r["backend"] == backend and r["scale"] == scale and r["workers"] == workers
    }


def throughput(results: list[dict[str, Any]], out: Path) -> None:
    """Saturation throughput of each scenario as a share of the bare handler's, per backend, at 10 thousand rows."""
    figure, axis = plt.subplots(figsize=(10, 4.5))
    backends = sorted({r["backend"] for r in results})
    scenarios = [s for s in _by(results, backends[0], 10_000) if s != "bare"]
    width = 0.8 / len(backends)
    for index, backend in enumerate(backends):
        rows = _by(results, backend, 10_000)
        bare = rows["bare"]["saturation"]["rps"]
        values = [100 * rows[s]["saturation"]["rps"] / bare for s in scenarios]
        axis.bar([i + index * width for i in range(len(scenarios))], values, width, label=backend)
    axis.set_xticks([i + width / 2 for i in range(len(scenarios))], scenarios, rotation=25, ha="right")
    axis.set_ylabel("% of the bare handler's req/s")
    axis.set_title("Throughput at saturation, 10 thousand requests stored")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "throughput.png", dpi=110)


def latency(results: list[dict[str, Any]], out: Path) -> None:
    """p99 at half of saturation for every scenario, per backend and scale, against the 50 ms target."""
    figure, axis = plt.subplots(figsize=(10, 4.5))
    series = sorted({(r["backend"], r["scale"]) for r in results})
    scenarios = [s for s in _by(results, *series[0]) if s != "bare"]
    width = 0.8 / len(series)
    for index, (backend, scale) in enumerate(series):
        rows = _by(results, backend, scale)
        values = [rows[s]["half"]["p99_ms"] if s in rows else 0 for s in scenarios]
        axis.bar([i + index * width for i in range(len(scenarios))], values, width, label=f"{backend}, {scale:,}")
    axis.axhline(50, color="red", linestyle="--", linewidth=1, label="target 50 ms")
    axis.set_yscale("log")
    axis.set_xticks([i + width * len(series) / 2 for i in range(len(scenarios))], scenarios, rotation=25, ha="right")
    axis.set_ylabel("p99 ms at half of saturation (log)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "latency.png", dpi=110)


def growth(results: list[dict[str, Any]], out: Path) -> None:
    """CPU per request of list and search at 10 thousand against 1 million stored requests."""
    figure, axis = plt.subplots(figsize=(7, 4))
    labels, small, large = [], [], []
    for backend in sorted({r["backend"] for r in results}):
        low, high = _by(results, backend, 10_000), _by(results, backend, 1_000_000)
        for scenario in ("get_request", "active_approvals", "search"):
            if scenario in low and scenario in high:
                labels.append(f"{backend}\n{scenario}")
                small.append(low[scenario]["cpu_ms_per_request"])
                large.append(high[scenario]["cpu_ms_per_request"])
    positions = range(len(labels))
    axis.bar([p - 0.2 for p in positions], small, 0.4, label="10 thousand")
    axis.bar([p + 0.2 for p in positions], large, 0.4, label="1 million")
    axis.set_xticks(list(positions), labels, fontsize=8)
    axis.set_ylabel("CPU ms per request (grantflow process)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "growth.png", dpi=110)


def raw_database(results: list[dict[str, Any]], out: Path) -> None:
    """grantflow's req/s against the bare driver running the same statements, per backend, at 10 thousand rows."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for axis, backend in zip(axes, sorted({r["backend"] for r in results}), strict=False):
        rows = [r for r in _by(results, backend, 10_000).values() if r.get("raw_db_rps")]
        names = [r["scenario"] for r in rows]
        positions = range(len(rows))
        axis.bar([p - 0.2 for p in positions], [r["saturation"]["rps"] for r in rows], 0.4, label="grantflow")
        axis.bar([p + 0.2 for p in positions], [r["raw_db_rps"] for r in rows], 0.4, label="bare driver, same SQL")
        axis.set_yscale("log")
        axis.set_xticks(list(positions), names, rotation=30, ha="right", fontsize=8)
        axis.set_title(f"{backend}, 10 thousand requests")
    axes[0].set_ylabel("requests (units) per second, log")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "raw-database.png", dpi=110)


def main() -> None:
    *files, target = sys.argv[1:]
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    results = [r for f in files for r in json.loads(Path(f).read_text())["results"]]
    throughput(results, out)
    latency(results, out)
    growth(results, out)
    raw_database(results, out)
    print(f"plots written to {out}")


if __name__ == "__main__":
    main()
