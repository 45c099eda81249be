"""Admin HTTP for the refusal log: "why was this tenant refused?", after the fact."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from billplane.http import Admin, Tx, errors
from billplane.paging import ListOut
from billplane.projects.service import get_project
from billplane.refusals import service
from billplane.refusals.schemas import RefusalOut
from billplane.schemas import Key, PageLimit, TenantKey

router = APIRouter(prefix="/admin/api/projects/{project}/refusals", tags=["admin"])


@router.get(
    "",
    response_model=ListOut[RefusalOut],
    responses=errors((404, "No such project (`project_not_found`).")),
)
def list_refusals(
    project: Key,
    _: Admin,
    tx: Tx,
    tenant: TenantKey | None = None,
    feature: Key | None = None,
    reason: Annotated[str | None, Query(max_length=32, examples=["limit_reached"])] = None,
    since: Annotated[datetime | None, Query(description="At or after this moment.")] = None,
    until: Annotated[datetime | None, Query(description="Before this moment.")] = None,
    limit: PageLimit = 100,
    starting_after: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="A refusal's `id`.")
    ] = None,
) -> Any:
    """Refused checks (`allowed: false`) and usage calls (402), newest first. Kept for
    `BILLPLANE_REFUSALS_KEEP_DAYS` (30 by default), at most
    `BILLPLANE_REFUSALS_MAX_PER_PROJECT` per project; written in the background within about a
    second of the refusal (a crash may lose that second's)."""
    with tx.read() as session:
        found = get_project(session, project)
        page = service.recent(
            session,
            found.id,
            tenant=tenant,
            feature=feature,
            reason=reason,
            since=since,
            until=until,
            limit=limit,
            starting_after=starting_after,
        )
        return {
            "data": [RefusalOut.model_validate(r, from_attributes=True) for r in page.data],
            "has_more": page.has_more,
        }
