"""Admin HTTP for tenants."""

from functools import partial
from typing import Any

from fastapi import APIRouter

from billplane.entitlements import preview
from billplane.entitlements.schemas import PreviewOut
from billplane.http import KEY_TAKEN, Admin, CurrentSettings, DryRun, Now, Tx, errors
from billplane.paging import ListOut
from billplane.projects.service import get_project
from billplane.schemas import Key, PageLimit, TenantKey
from billplane.tenants import repository, service
from billplane.tenants.schemas import TenantDetailOut, TenantIn, TenantOut, TenantPatch

router = APIRouter(prefix="/admin/api/projects/{project}/tenants", tags=["admin"])


@router.post(
    "",
    response_model=TenantOut,
    status_code=201,
    responses=errors(KEY_TAKEN),
)
def create_tenant(project: Key, body: TenantIn, actor: Admin, tx: Tx, now: Now) -> Any:
    with tx.write() as session:
        found = get_project(session, project)
        tenant = service.create_tenant(
            session, found, key=body.key, name=body.name, email=body.email, actor=actor, now=now
        )
        return service.describe(session, found, tenant)


@router.get("", response_model=ListOut[TenantOut])
def list_tenants(
    project: Key,
    _: Admin,
    tx: Tx,
    limit: PageLimit = 100,
    starting_after: TenantKey | None = None,
) -> Any:
    with tx.read() as session:
        found = get_project(session, project)
        page = repository.list_tenants(
            session, found.id, limit=limit, starting_after=starting_after
        )
        return {
            "data": [service.describe(session, found, t) for t in page.data],
            "has_more": page.has_more,
        }


@router.get("/{tenant}", response_model=TenantDetailOut)
def get_tenant(
    project: Key,
    tenant: TenantKey,
    _: Admin,
    tx: Tx,
    now: Now,
    settings: CurrentSettings,
) -> Any:
    with tx.read() as session:
        found = get_project(session, project)
        return service.detail(
            session,
            found,
            service.get_tenant(session, found, tenant),
            now,
            settings.billplane_past_due_grace_days,
        )


@router.patch("/{tenant}", response_model=TenantOut | PreviewOut)
def update_tenant(
    project: Key,
    tenant: TenantKey,
    body: TenantPatch,
    actor: Admin,
    tx: Tx,
    now: Now,
    settings: CurrentSettings,
    dry_run: DryRun = False,
) -> Any:
    """Change a tenant's name, email or overrides, or archive or restore it (`status`).

    An archived tenant keeps its subscription, usage and audit trail; every check of it answers
    `allowed: false` with reason `tenant_archived`, and enforced usage is refused (402). With
    `dry_run`, nothing changes: the answer says what the change would do (as a plan's)."""
    with tx.write() as session:
        found = get_project(session, project)
        changes = service.changes_from(body)
        update = partial(
            service.update_tenant,
            session,
            found,
            tenant,
            changes,
            actor=actor,
            now=now,
            grace_days=settings.billplane_past_due_grace_days,
        )
        if dry_run:
            grace = settings.billplane_past_due_grace_days
            return preview.of_change(session, found, now, grace, update)
        return service.describe(session, found, update())
