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
                "events": float(target.get("events_per_s") or 0.0),
            }
    return found


def draw(results: Path, baseline: Path | None) -> Path:
    """Write `<results>.png` beside the run's JSON; returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write files only
    import matplotlib.pyplot as plt

    after = _figures(results)
    before = _figures(baseline) if baseline is not None and baseline.exists() else {}
    requests = [k for k in after if k[1] != "batch"]
    batches = [k for k in after if k[1] == "batch"]
    figure, axes = plt.subplots(4, 1, figsize=(max(10, len(requests) * 0.9), 15))
    width = 0.4
    for axis, metric, title, keys in (
        (axes[0], "ratio", "requests/s as a share of the same run's /healthz", requests),
        (axes[1], "rps", "requests per second (higher is better)", requests),
        (axes[2], "p99", "p99 latency, ms, log scale (lower is better)", [*requests, *batches]),
        (axes[3], "events", "batch: events per second (1,000 per request)", batches),
    ):
        xs = range(len(keys))
        labels = [f"{engine}\n{target}" for engine, target in keys]
        old = [before.get(k, {}).get(metric, 0.0) for k in keys]
        new = [after[k][metric] for k in keys]
        axis.bar([x - width / 2 for x in xs], old, width, label="before", color="#bbbbbb")
        axis.bar([x + width / 2 for x in xs], new, width, label="after", color="#3367d6")
        axis.set_title(title)
        axis.set_xticks(list(xs), labels, fontsize=8)
        if metric == "p99":
            axis.set_yscale("log")
        axis.legend()
    against = baseline.name if baseline is not None and before else "nothing"
    figure.suptitle(f"make bench: {results.name} against {against}")
    figure.tight_layout()
    out = results.with_suffix(".png")
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out
