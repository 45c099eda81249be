"""Admin HTTP for reading the audit trail."""

from fastapi import APIRouter

from billplane.audit import service
from billplane.audit.schemas import AuditEntryOut
from billplane.http import Admin, Tx, errors
from billplane.paging import ListOut
from billplane.projects.service import get_project
from billplane.schemas import Key, PageLimit

router = APIRouter(prefix="/admin/api", tags=["admin"])


@router.get(
    "/audit",
    response_model=ListOut[AuditEntryOut],
    responses=errors((404, "No project with the key given as `project` (`project_not_found`).")),
)
def list_audit(
    _: Admin, tx: Tx, project: Key | None = None, limit: PageLimit = 100
) -> ListOut[AuditEntryOut]:
    """The newest operator actions and webhook-caused changes first."""
    with tx.read() as session:
        project_id = get_project(session, project).id if project else None
        entries = service.recent(session, project_id=project_id, limit=limit)
        rows = [
            AuditEntryOut(
                actor=e.actor,
                action=e.action,
                target=e.target,
                before=e.before,
                after=e.after,
                created_at=e.created_at,
            )
            for e in entries
        ]
        return ListOut(data=rows, has_more=False)
