"""What `GET /metrics` shows (DESIGN §6), and the few calls that count it.

With several workers, each process keeps its values in files of PROMETHEUS_MULTIPROC_DIR and a
scrape, whichever worker answers it, sums them all (prometheus-client's multiprocess mode;
`billplane serve` sets the directory up). Counting sits on the client API's hot path, so each
call here is a dict lookup of a child bound once per label set, then one increment.
"""

import os
import re
from collections import Counter as Tally
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Whether prometheus-client keeps values in files: it decided when it was first imported, from
# PROMETHEUS_MULTIPROC_DIR. A single-process server may have imported it before `serve` set the
# directory; its values are then in memory, which is right for one process.
MULTIPROCESS = values.ValueClass is not values.MutexValue
DIRECTORY = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if MULTIPROCESS and DIRECTORY:  # each metric below opens its file there as it is made
    Path(DIRECTORY).mkdir(parents=True, exist_ok=True)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds; the client API answers in milliseconds, Stripe and the dashboard in tenths of seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "billplane_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, per route template and status.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
CHECK_DECISIONS = Counter(
    "billplane_check_decisions",
    "Answers of /v1/check, per reason (`ok` is an allowed check).",
    ["reason"],
)
USAGE_EVENTS = Counter(
    "billplane_usage_events",
    "Usage events by outcome: recorded, duplicate (a repeated idempotency key) or refused "
    "(with the error code as reason).",
    ["outcome", "reason"],
)
STRIPE_WEBHOOK_EVENTS = Counter(
    "billplane_stripe_webhook_events",
    "Stripe's webhook deliveries per event type (`unverified` before the signature is checked) "
    "and outcome: processed, ignored, duplicate, failed, or the error code of a refusal.",
    ["type", "outcome"],
)
STRIPE_API_SECONDS = Histogram(
    "billplane_stripe_api_duration_seconds",
    "Time of each call to Stripe's API (retries included), per operation.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
STRIPE_API_ERRORS = Counter(
    "billplane_stripe_api_errors",
    "Calls to Stripe's API that failed, per operation and error (the Stripe SDK's class name).",
    ["operation", "error"],
)
APP_WEBHOOK_DELIVERIES = Counter(
    "billplane_app_webhook_deliveries",
    "Attempts to deliver a webhook to a client app, by outcome: delivered (a 2xx) or failed.",
    ["outcome"],
)
# Gauges of the ORM pool (admin API, dashboard, webhooks), summed over live workers. The client
# API's hot path holds its own connections outside this pool: one reader and one writer each.
DB_CHECKED_OUT = Gauge(
    "billplane_db_pool_checked_out",
    "Connections of the ORM pool in use by a request or job now.",
    multiprocess_mode="livesum",
)
DB_OPEN = Gauge(
    "billplane_db_pool_open",
    "Connections the ORM pool holds open (in use or idle).",
    multiprocess_mode="livesum",
)
# A process starts at zero: in a directory kept across restarts, a new process may have the pid,
# and so the files, of one that died.
for _gauge in (DB_CHECKED_OUT, DB_OPEN):
    _gauge.set(0)

Metric = TypeVar("Metric", Counter, Histogram)


class Children(Generic[Metric]):
    """A labelled metric's children, each bound once: `labels()` takes a lock and builds strings
    on every call, a lookup here is one dict access."""

    def __init__(self, metric: Metric) -> None:
        self._metric: Metric = metric
        self._bound: dict[tuple[str, ...], Metric] = {}

    def __call__(self, *labels: str) -> Metric:
        child = self._bound.get(labels)
        if child is None:
            child = self._bound[labels] = self._metric.labels(*labels)
        return child


decisions = Children(CHECK_DECISIONS)
usage_events = Children(USAGE_EVENTS)
webhook_events = Children(STRIPE_WEBHOOK_EVENTS)
stripe_seconds = Children(STRIPE_API_SECONDS)
stripe_errors = Children(STRIPE_API_ERRORS)
app_webhook_deliveries = Children(APP_WEBHOOK_DELIVERIES)

RECORDED, DUPLICATE, REFUSED = "recorded", "duplicate", "refused"


def check_decided(reason: str) -> None:
    decisions(reason).inc()


def usage_counted(outcomes: Tally[tuple[str, str]]) -> None:
    """Usage events by (outcome, reason); a batch's are tallied first, then counted once each."""
    for (outcome, reason), count in outcomes.items():
        usage_events(outcome, reason).inc(count)


def usage_recorded(created: bool) -> None:
    usage_events(RECORDED if created else DUPLICATE, "").inc()


def usage_refused(code: str, count: int = 1) -> None:
    usage_events(REFUSED, code).inc(count)


def webhook_event(event_type: str, outcome: str) -> None:
    webhook_events(event_type, outcome).inc()


def app_webhook_delivery(outcome: str) -> None:
    app_webhook_deliveries(outcome).inc()


def stripe_call(operation: str, seconds: float, error: str | None) -> None:
    stripe_seconds(operation).observe(seconds)
    if error is not None:
        stripe_errors(operation, error).inc()


@dataclass(frozen=True)
class Backlog:
    """The app webhook deliveries waiting to go out, as the database holds them at a scrape."""

    pending: int
    oldest_pending_seconds: float  # 0 when none is pending


class _BacklogCollector(Collector):
    """Gauges read from the database at scrape time, not kept by any worker: every worker
    answers them alike, so they are never summed over workers."""

    def __init__(self, backlog: Backlog) -> None:
        self.backlog = backlog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "billplane_app_webhook_deliveries_pending",
            "Webhook deliveries to client apps waiting to go out (due or retried later).",
            value=self.backlog.pending,
        )
        yield GaugeMetricFamily(
            "billplane_app_webhook_oldest_pending_seconds",
            "Age of the oldest webhook delivery to a client app still waiting (0: none waits).",
            value=self.backlog.oldest_pending_seconds,
        )


def exposition(backlog: Backlog | None = None) -> bytes:
    """The Prometheus text of every worker's metrics (or this process's, when it is alone),
    and the app webhook backlog when it could be read."""
    if not MULTIPROCESS:
        text = generate_latest(REGISTRY)
    else:
        forget_dead_processes()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    if backlog is None:
        return text
    read_now = CollectorRegistry(auto_describe=False)
    read_now.register(_BacklogCollector(backlog))
    return text + generate_latest(read_now)


_PID = re.compile(r"_(\d+)\.db$")


def forget_dead_processes(directory: str | None = DIRECTORY) -> None:
    """Drop the live gauges of workers that died (uvicorn starts others in their place), as
    prometheus-client asks of a multiprocess server; their counters stay in the sums."""
    if not directory:
        return
    pids = {int(m.group(1)) for f in Path(directory).glob("*.db") if (m := _PID.search(f.name))}
    for pid in pids:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
