"""Admin HTTP for the set-up status: Stripe, webhook, and the checklist with what is done."""

from fastapi import APIRouter

from billplane.http import Admin, Now, ServedSettings, Stripe, Tx
from billplane.status import service
from billplane.status.checklist import Item
from billplane.status.probes import Status
from billplane.status.schemas import ChecklistItemOut, SetupStatusOut, StatusOut

router = APIRouter(prefix="/admin/api", tags=["admin"])


def _status(status: Status) -> StatusOut:
    return StatusOut(label=status.label, ok=status.ok, detail=status.detail)


def _item(item: Item) -> ChecklistItemOut:
    return ChecklistItemOut(
        key=item.key,
        group=item.group,
        title=item.title,
        state=item.state,
        done=item.state == "done",
        action=item.action,
    )


@router.get("/status", response_model=SetupStatusOut)
def setup_status(
    _: Admin, tx: Tx, settings: ServedSettings, stripe: Stripe, now: Now
) -> SetupStatusOut:
    """What the dashboard's header and "What to do next" show, as JSON."""
    seen = service.overview(tx, settings, stripe, now)
    return SetupStatusOut(
        stripe=_status(seen.stripe),
        webhook=_status(seen.webhook),
        checklist=[_item(item) for item in seen.items],
        next=_item(seen.next) if seen.next else None,
    )
