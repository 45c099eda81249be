"""Presenting a bench run: the table on the terminal and the JSON file in `bench/results/`."""

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from loadgen import Measurement

RESULTS = Path(__file__).resolve().parent / "results"
CEILING = "healthz"
# The suffix of the targets measured again while app webhook deliveries wait (`backlog`); they
# are compared with the ceiling measured then.
BACKLOG = "-backlog"


class Backlog(Protocol):
    pending_at_start: int
    pending_at_end: int
    delivered: int


@dataclass(frozen=True)
class UsageAudit:
    """After the usage load: does the counter match what the server acknowledged?

    Every 201 wrk saw must be counted (fewer would be a lost update). The counter may be higher by
    the requests still in flight when a wrk run stopped, which wrk never saw answered.
    """

    acknowledged: int  # 201s seen by wrk (warm-up included, batch events) plus the seeded one
    counted: int  # the sum of the feature's usage counters in the database
    in_flight_bound: int  # open connections x wrk runs (x events per batch)
    recorded: int  # the sum of the feature's usage events in the database

    @property
    def consistent(self) -> bool:
        within = self.acknowledged <= self.counted <= self.acknowledged + self.in_flight_bound
        return within and self.recorded == self.counted

    def describe(self) -> str:
        verdict = "ok" if self.consistent else "INCONSISTENT"
        return (
            f"usage counters {self.counted:,} and events {self.recorded:,} for "
            f"{self.acknowledged:,} acknowledged (+ up to {self.in_flight_bound:,} in flight): "
            f"{verdict}"
        )


# The plain enforced usage and the credit-priced one, measured again side by side (`Pair`).
PAIR = ("usage-many", "usage-credits")


@dataclass
class Pair:
    """`PAIR`'s two loads alternating in blocks of the wall clock on the same connections (see
    `run.measure_pair` and `bench/lua/pair.lua`)."""

    run: Measurement | None = None
    block_s: int = 0

    def pairs(self) -> list[tuple[int, int]]:
        """(plain 201s, priced 201s) of each whole plain block and the priced block after it:
        the first and the last block seen are cut short by the run's ends, so left out."""
        whole = list(self.run.blocks[1:-1]) if self.run else []
        if whole and whole[0][0] == 1:  # a priced block first: it has no plain one before it
            whole = whole[1:]
        return [
            (plain[1], priced[2])
            for plain, priced in zip(whole[::2], whole[1::2], strict=False)
            if (plain[0], priced[0]) == (0, 1)
        ]

    def ratio(self) -> float | None:
        """The credit-priced usage's 201s over the plain one's, in all pairs of blocks."""
        pairs = self.pairs()
        plain = sum(p for p, _ in pairs)
        return sum(c for _, c in pairs) / plain if plain else None

    def slice_ratios(self) -> list[float]:
        return [c / p for p, c in self.pairs() if p]

    def plain_201(self) -> int:
        """Every plain usage answered 201, whatever block it arrived in (the usage audit's)."""
        return sum(plain for _, plain, _ in self.run.blocks) if self.run else 0


@dataclass
class EngineRun:
    engine: str
    measurements: list[Measurement] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    usage_audit: UsageAudit | None = None
    error: str | None = None  # why the engine's run stopped early, if it did
    pgbench_tps: float | None = None  # PostgreSQL: pgbench running the usage transaction
    preview_seconds: float | None = None  # a plan change previewed over many tenants
    preview_tenants: int = 0  # how many were added for it
    backlog: Backlog | None = None  # app webhook deliveries waiting while `*-backlog` ran
    pair: Pair = field(default_factory=Pair)  # usage-many and usage-credits side by side

    def measurement(self, target: str) -> Measurement | None:
        return next((m for m in self.measurements if m.target == target), None)

    def versus_pgbench(self) -> float | None:
        hot = self.measurement("usage-hot")
        if hot is None or not self.pgbench_tps:
            return None
        return hot.requests_per_s / self.pgbench_tps

    def refused_versus_allowed(self) -> float | None:
        allowed, refused = self.measurement("check"), self.measurement("check-refused")
        if allowed is None or refused is None or not allowed.requests_per_s:
            return None
        return refused.requests_per_s / allowed.requests_per_s

    def credits_versus_plain(self) -> float | None:
        """Issue 13's figure: a credit-priced enforced usage over a plain one, side by side."""
        return self.pair.ratio()

    def credits_versus_plain_rows(self) -> float | None:
        """The same from the two targets' own rows, measured one after the other."""
        plain, credits = (self.measurement(name) for name in PAIR)
        if plain is None or credits is None or not plain.requests_per_s:
            return None
        return credits.requests_per_s / plain.requests_per_s

    def ceiling(self, suffix: str = "") -> float | None:
        for m in self.measurements:
            if m.target == CEILING + suffix:
                return m.requests_per_s
        return None

    def ratio(self, m: Measurement) -> float | None:
        """Of the ceiling measured alike: under the backlog for a `*-backlog` target."""
        ceiling = self.ceiling(BACKLOG if m.target.endswith(BACKLOG) else "")
        return m.requests_per_s / ceiling if ceiling else None

    def backlog_ratios(self) -> dict[str, tuple[float | None, float | None]]:
        """Per client call measured under the backlog: (its ratio to the ceiling without the
        backlog, with it)."""
        found: dict[str, tuple[float | None, float | None]] = {}
        for name, plain in (("check", "check"), ("usage", "usage-many")):
            under, alone = self.measurement(name + BACKLOG), self.measurement(plain)
            if under is not None:
                found[name] = (None if alone is None else self.ratio(alone), self.ratio(under))
        return found


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def table(runs: list[EngineRun]) -> str:
    header = [
        "engine",
        "endpoint",
        "req/s",
        "p50 ms",
        "p99 ms",
        "vs ceiling",
        "events/s",
        "non-2xx",
        "sock err",
    ]
    rows = [header] + [_row(run, m) for run in runs for m in run.measurements]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(row: list[str]) -> str:
        # Names to the left, numbers to the right.
        pairs = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs)

    lines = [line(header), "  ".join("-" * w for w in widths), *map(line, rows[1:])]
    for run in runs:
        refused = run.refused_versus_allowed()
        if refused is not None:
            lines.append(
                f"{run.engine}: a refused check (kept in the refusal log) runs at "
                f"{refused:.2f}x of an allowed one"
            )
        credits = run.credits_versus_plain()
        if credits is not None:
            slices = " ".join(f"{r:.2f}" for r in run.pair.slice_ratios())
            lines.append(
                f"{run.engine}: an enforced usage of a credit-priced feature runs at "
                f"{credits:.2f}x of a plain one (usage-credits vs usage-many in "
                f"{len(run.pair.pairs())} pairs of {run.pair.block_s} s blocks alternating on "
                f"the same connections: {slices}; "
                f"{_x(run.credits_versus_plain_rows())} from their rows above)"
            )
        if run.preview_seconds is not None:
            lines.append(
                f"{run.engine}: a plan change previewed over {run.preview_tenants:,}+ tenants "
                f"in {run.preview_seconds:.2f} s"
            )
        if run.backlog is not None:
            ratios = ", ".join(
                f"{name} {_x(under)} of /healthz (without it {_x(alone)})"
                for name, (alone, under) in run.backlog_ratios().items()
            )
            lines.append(
                f"{run.engine}: with {run.backlog.pending_at_end:,}-"
                f"{run.backlog.pending_at_start:,} app webhook deliveries waiting for an app "
                f"that sleeps 2 s: {ratios}"
            )
        versus = run.versus_pgbench()
        if versus is not None and run.pgbench_tps:
            lines.append(
                f"{run.engine}: pgbench ran the usage transaction at {run.pgbench_tps:,.0f} tps; "
                f"usage-hot is {versus:.2f}x of it"
            )
    return "\n".join(lines)


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _row(run: EngineRun, m: Measurement) -> list[str]:
    ratio = run.ratio(m)
    return [
        run.engine,
        m.target,
        f"{m.requests_per_s:,.0f}",
        f"{m.percentile_ms('50'):.1f}",
        f"{m.percentile_ms('99'):.1f}",
        "-" if ratio is None else f"{ratio:.2f}x",
        f"{m.events_per_s:,.0f}" if m.events_201 else "-",
        f"{m.non_2xx:,}",
        f"{sum(m.socket_errors.values()):,}",
    ]


def write_json(runs: list[EngineRun], settings: dict[str, Any], started: datetime) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    document = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "settings": settings,
        "engines": [_engine_json(run) for run in runs],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def _engine_json(run: EngineRun) -> dict[str, Any]:
    return {
        "engine": run.engine,
        "error": run.error,
        "pgbench_tps": run.pgbench_tps,
        "usage_hot_vs_pgbench": run.versus_pgbench(),
        "check_refused_vs_allowed": run.refused_versus_allowed(),
        "credits_vs_plain_usage": run.credits_versus_plain(),
        "credits_vs_plain_usage_rows": run.credits_versus_plain_rows(),
        "credits_vs_plain_usage_blocks": {
            "block_s": run.pair.block_s,
            "blocks": [list(b) for b in run.pair.run.blocks] if run.pair.run else [],
            "run": _slice_json(run.pair.run) if run.pair.run else None,
        },
        "preview_seconds": run.preview_seconds,
        "preview_tenants": run.preview_tenants,
        "backlog": None
        if run.backlog is None
        else {
            "pending_at_start": run.backlog.pending_at_start,
            "pending_at_end": run.backlog.pending_at_end,
            "delivered": run.backlog.delivered,
            "ratios_without_and_with": run.backlog_ratios(),
        },
        "server_error_lines": run.server_errors[:50],
        "usage_audit": None
        if run.usage_audit is None
        else {**asdict(run.usage_audit), "consistent": run.usage_audit.consistent},
        "targets": [
            {
                **asdict(m),
                "requests_per_s": round(m.requests_per_s, 1),
                "p50_ms": m.percentile_ms("50"),
                "p99_ms": m.percentile_ms("99"),
                "ratio_to_ceiling": run.ratio(m),
                "events_per_s": round(m.events_per_s, 1),
                "non_2xx": m.non_2xx,
            }
            for m in run.measurements
        ],
    }


def _slice_json(m: Measurement) -> dict[str, Any]:
    return {
        "requests": m.requests,
        "duration_s": m.duration_s,
        "requests_per_s": round(m.requests_per_s, 1),
        "non_2xx": m.non_2xx,
    }
