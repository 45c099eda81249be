"""billplane's Python client: "can this tenant do this?", usage recorded exactly once, checkout.

    from billplane_client import Billplane, OutagePolicy

    bp = Billplane.from_env(outage=OutagePolicy(default="closed", features={"search": "open"}))
    if bp.check("acme", "listings.publish").allowed:
        ...

Usage billplane cannot be told about waits in a durable outbox (a SQLite file) and is replayed
with its idempotency key once billplane answers again (`bp.flush()` to replay it all now).

The core needs only httpx; the FastAPI, Starlette and Flask helpers live in their own modules
(`billplane_client.fastapi`, `.starlette`, `.flask`) and import their framework only there.
"""

from billplane_client.aio import AsyncBillplane
from billplane_client.client import Billplane
from billplane_client.credits import (
    Balances,
    CreditBucket,
    LedgerEntry,
    PoolBalance,
    Reservation,
    Topup,
)
from billplane_client.errors import (
    BillplaneError,
    BillplaneUnreachable,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    PaymentRequired,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
)
from billplane_client.gating import Gate
from billplane_client.outbox import Flushed, KeptAside, Outbox, QueuedEvent
from billplane_client.policy import OutagePolicy
from billplane_client.recording import records_usage
from billplane_client.snapshots import SnapshotRefused
from billplane_client.types import (
    BatchResult,
    Check,
    CheckoutSession,
    Entitlements,
    FeatureEntitlement,
    PortalSession,
    Subscription,
    Usage,
    UsageEvent,
    UsageNow,
)
from billplane_client.version import __version__
from billplane_client.webhooks import WebhookEvent, WebhookRefused, Webhooks

__all__ = [
    "AsyncBillplane",
    "Balances",
    "BatchResult",
    "Billplane",
    "BillplaneError",
    "BillplaneUnreachable",
    "Check",
    "CheckoutSession",
    "Conflict",
    "CreditBucket",
    "Entitlements",
    "FeatureEntitlement",
    "Flushed",
    "Forbidden",
    "Gate",
    "InvalidRequest",
    "KeptAside",
    "LedgerEntry",
    "NotFound",
    "OutagePolicy",
    "Outbox",
    "PaymentRequired",
    "PoolBalance",
    "PortalSession",
    "QueuedEvent",
    "Reservation",
    "ServerError",
    "ServiceUnavailable",
    "SnapshotRefused",
    "Subscription",
    "Topup",
    "Unauthorized",
    "Usage",
    "UsageEvent",
    "UsageNow",
    "WebhookEvent",
    "WebhookRefused",
    "Webhooks",
    "__version__",
    "records_usage",
]
