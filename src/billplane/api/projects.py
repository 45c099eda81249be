"""Admin HTTP for projects and features."""

from typing import Any

from fastapi import APIRouter

from billplane.http import KEY_TAKEN, Admin, CurrentSettings, Now, Tx, errors
from billplane.models import Feature, Project
from billplane.paging import ListOut
from billplane.projects import repository, service
from billplane.projects.schemas import (
    FeatureIn,
    FeatureOut,
    FeaturePatch,
    NewProjectOut,
    ProjectIn,
    ProjectOut,
    ProjectPatch,
)
from billplane.schemas import Key, PageLimit

router = APIRouter(prefix="/admin/api", tags=["admin"])


def project_out(project: Project) -> ProjectOut:
    return ProjectOut(
        key=project.key,
        name=project.name,
        origins=project.origins,
        created_at=project.created_at,
        snapshot_ttl_seconds=project.snapshot_ttl_seconds,
    )


def feature_out(feature: Feature) -> FeatureOut:
    return FeatureOut(**service.describe_feature(feature))


@router.post(
    "/projects",
    response_model=NewProjectOut,
    status_code=201,
    responses=errors(KEY_TAKEN),
)
def create_project(body: ProjectIn, actor: Admin, tx: Tx, now: Now) -> Any:
    """Create a project; its first project token is in `token`, shown only this once."""
    with tx.write() as session:
        created = service.create_project(
            session,
            key=body.key,
            name=body.name,
            origins=body.origin_strings(),
            actor=actor,
            now=now,
        )
        return NewProjectOut(
            **project_out(created.project).model_dump(),
            token=created.token.secret,
            token_id=created.token.token.public_id,
            token_prefix=created.token.token.prefix,
        )


@router.get("/projects", response_model=ListOut[ProjectOut])
def list_projects(
    _: Admin, tx: Tx, limit: PageLimit = 100, starting_after: Key | None = None
) -> Any:
    with tx.read() as session:
        page = repository.list_projects(session, limit=limit, starting_after=starting_after)
        return {"data": [project_out(p) for p in page.data], "has_more": page.has_more}


@router.get("/projects/{project}", response_model=ProjectOut)
def get_project(project: Key, _: Admin, tx: Tx) -> Any:
    with tx.read() as session:
        return project_out(service.get_project(session, project))


@router.patch("/projects/{project}", response_model=ProjectOut)
def update_project(project: Key, body: ProjectPatch, actor: Admin, tx: Tx, now: Now) -> Any:
    """Rename the project, replace its origins, or set how long its signed snapshots are valid
    (`snapshot_ttl_seconds`; null: the server's BILLPLANE_SNAPSHOT_TTL)."""
    with tx.write() as session:
        updated = service.update_project(
            session,
            project,
            name=body.name,
            origins=body.origin_strings(),
            actor=actor,
            now=now,
            snapshot_ttl=service.snapshot_ttl_change(body),
        )
        return project_out(updated)


@router.post(
    "/projects/{project}/features",
    response_model=FeatureOut,
    status_code=201,
    responses=errors(KEY_TAKEN),
)
def create_feature(project: Key, body: FeatureIn, actor: Admin, tx: Tx, now: Now) -> Any:
    with tx.write() as session:
        feature = service.create_feature(
            session,
            service.get_project(session, project),
            body,
            actor=actor,
            now=now,
        )
        return feature_out(feature)


@router.get("/projects/{project}/features", response_model=ListOut[FeatureOut])
def list_features(
    project: Key,
    _: Admin,
    tx: Tx,
    limit: PageLimit = 100,
    starting_after: Key | None = None,
) -> Any:
    with tx.read() as session:
        found = service.get_project(session, project)
        page = repository.list_features(
            session, found.id, limit=limit, starting_after=starting_after
        )
        return {"data": [feature_out(f) for f in page.data], "has_more": page.has_more}


@router.patch("/projects/{project}/features/{feature}", response_model=FeatureOut)
def update_feature(
    project: Key,
    feature: Key,
    body: FeaturePatch,
    actor: Admin,
    tx: Tx,
    now: Now,
    settings: CurrentSettings,
) -> Any:
    """Rename a feature, change or remove (`"unit": null`) its unit, or archive or restore it
    (`status`). Its key and type stay: grants and usage are kept under them. An archived
    feature keeps its grants and usage; every check of it answers `allowed: false` with reason
    `feature_archived`."""
    with tx.write() as session:
        updated = service.update_feature(
            session,
            service.get_project(session, project),
            feature,
            service.feature_changes(body),
            actor=actor,
            now=now,
            grace_days=settings.billplane_past_due_grace_days,
        )
        return feature_out(updated)
