"""The bench's picture: req/s and p99 per endpoint and engine, this run beside a baseline.

The baseline is an earlier run's JSON (by default `bench/baseline.json`, the run of the code
before the fast path, kept in the repository so that every run shows before against after).
"""

import json
from pathlib import Path

BASELINE = Path(__file__).resolve().parent / "baseline.json"


def _figures(path: Path) -> dict[tuple[str, str], dict[str, float]]:
    document = json.loads(path.read_text())
    found: dict[tuple[str, str], dict[str, float]] = {}
    for engine in document["engines"]:
        for target in engine["targets"]:
            found[(engine["engine"], target["target"])] = {
                "rps": float(target["requests_per_s"]),
                "p99": float(target["p99_ms"]),
                "ratio": float(target["ratio_to_ceiling"] or 0.0),
            }
    return found


def draw(results: Path, baseline: Path | None) -> Path:
    """Write `<results>.png` beside the run's JSON; returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write files only
    import matplotlib.pyplot as plt

    after = _figures(results)
    before = _figures(baseline) if baseline is not None and baseline.exists() else {}
    keys = list(after)
    labels = [f"{engine}\n{target}" for engine, target in keys]
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(max(10, len(keys) * 0.9), 12))
    width = 0.4
    xs = range(len(keys))
    for axis, metric, title in (
        (top, "ratio", "throughput as a share of the same run's /healthz (higher is better)"),
        (middle, "rps", "requests per second (higher is better)"),
        (bottom, "p99", "p99 latency, ms, log scale (lower is better)"),
    ):
        old = [before.get(k, {}).get(metric, 0.0) for k in keys]
        new = [after[k][metric] for k in keys]
        axis.bar([x - width / 2 for x in xs], old, width, label="before", color="#bbbbbb")
        axis.bar([x + width / 2 for x in xs], new, width, label="after", color="#3367d6")
        axis.set_title(title)
        axis.set_xticks(list(xs), labels, fontsize=8)
        if metric == "p99":
            axis.set_yscale("log")
        axis.legend()
    figure.suptitle(f"make bench: {results.name} against {baseline.name if before else 'nothing'}")
    figure.tight_layout()
    out = results.with_suffix(".png")
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out
