"""Creating and listing projects; creating, editing and archiving their features.

Archiving or restoring a feature alters what every tenant granted it may do: their apps hear of
it (`tenant.entitlements.updated`) from the same transaction. A new feature does not: no plan
grants it yet, so no tenant may do more or less than before.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from sqlalchemy.orm import Session

from billplane.appwebhooks import outbox
from billplane.audit import service as audit
from billplane.errors import AlreadyExists, FeatureNotFound, ProjectNotFound
from billplane.models import Feature, Project
from billplane.projects import repository
from billplane.projects.schemas import FeatureIn, FeaturePatch, ProjectPatch
from billplane.schemas import FeatureType, Status
from billplane.tokens import service as tokens


@dataclass(frozen=True)
class FeatureChanges:
    name: str | None = None
    unit: str | None = None
    clear_unit: bool = False
    status: Status | None = None


def feature_changes(body: FeaturePatch) -> FeatureChanges:
    """An edit as the admin API and the CLI take it: a `unit` given as null removes the unit,
    one left out keeps it."""
    return FeatureChanges(
        name=body.name,
        unit=body.unit,
        clear_unit="unit" in body.model_fields_set and body.unit is None,
        status=body.status,
    )


@dataclass(frozen=True)
class NewProject:
    project: Project
    token: tokens.IssuedToken


def get_project(session: Session, key: str) -> Project:
    project = repository.get_project(session, key)
    if project is None:
        raise ProjectNotFound(f"No project '{key}'.")
    return project


def create_project(
    session: Session, *, key: str, name: str, origins: list[str], actor: str, now: datetime
) -> NewProject:
    """A project, with its first project token (the only time that token is shown)."""
    if repository.get_project(session, key) is not None:
        raise AlreadyExists(f"A project with key '{key}' already exists.", extra={"param": "key"})
    project = Project(key=key, name=name, origins=origins, created_at=now)
    repository.add(session, project)
    audit.record(
        session,
        actor=actor,
        action="project.create",
        target=f"project:{key}",
        project_id=project.id,
        after={"key": key, "name": name, "origins": origins},
        now=now,
    )
    token = tokens.issue_token(
        session, project=project, name="default", tenant=None, actor=actor, now=now
    )
    return NewProject(project, token)


@dataclass(frozen=True)
class SnapshotTtlChange:
    """A new snapshot lifetime for a project; `seconds=None` sets the server's default back."""

    seconds: int | None


def update_project(
    session: Session,
    key: str,
    *,
    name: str | None,
    origins: list[str] | None,
    actor: str,
    now: datetime,
    snapshot_ttl: SnapshotTtlChange | None = None,
) -> Project:
    """Rename a project, replace its origins (the base URLs checkout may return to), or set how
    long its signed snapshots are valid."""
    project = get_project(session, key)
    before = _editable(project)
    if name is not None:
        project.name = name
    if origins is not None:
        project.origins = origins
    if snapshot_ttl is not None:
        project.snapshot_ttl_seconds = snapshot_ttl.seconds
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="project.update",
        target=f"project:{key}",
        project_id=project.id,
        before=before,
        after=_editable(project),
        now=now,
    )
    return project


def snapshot_ttl_change(body: ProjectPatch) -> SnapshotTtlChange | None:
    """The lifetime an edit sets, if it sets one (the admin API and the CLI take it so)."""
    return SnapshotTtlChange(body.snapshot_ttl_seconds) if body.snapshot_ttl_given else None


def _editable(project: Project) -> dict[str, object]:
    return {
        "name": project.name,
        "origins": list(project.origins),
        "snapshot_ttl_seconds": project.snapshot_ttl_seconds,
    }


def create_feature(
    session: Session, project: Project, body: FeatureIn, *, actor: str, now: datetime
) -> Feature:
    key = body.key
    if repository.get_feature(session, project.id, key) is not None:
        raise AlreadyExists(
            f"Project '{project.key}' already has a feature '{key}'.", extra={"param": "key"}
        )
    feature = Feature(
        project_id=project.id,
        key=key,
        name=body.name,
        type=body.type,
        unit=body.unit,
        status="active",
        created_at=now,
    )
    repository.add(session, feature)
    audit.record(
        session,
        actor=actor,
        action="feature.create",
        target=f"feature:{project.key}/{key}",
        project_id=project.id,
        after=describe_feature(feature),
        now=now,
    )
    return feature


def get_feature(session: Session, project: Project, key: str) -> Feature:
    feature = repository.get_feature(session, project.id, key)
    if feature is None:
        raise FeatureNotFound(f"No feature '{key}' in project '{project.key}'.")
    return feature


class FeatureDescription(TypedDict):
    """A feature as the admin API answers it (`schemas.FeatureOut`) and the audit trail keeps
    it."""

    key: str
    name: str
    type: FeatureType
    unit: str | None
    status: Status


def describe_feature(feature: Feature) -> FeatureDescription:
    return {
        "key": feature.key,
        "name": feature.name,
        "type": feature.type,
        "unit": feature.unit,
        "status": feature.status,
    }


def update_feature(
    session: Session,
    project: Project,
    key: str,
    changes: FeatureChanges,
    *,
    actor: str,
    now: datetime,
    grace_days: int,
) -> Feature:
    """Rename a feature, change its unit, archive or restore it.

    Archiving keeps the feature's grants and usage: checks of it are refused with
    `feature_archived` until it is restored, and nothing else changes. Tenants it was granted
    to are told to their apps (`tenant.entitlements.updated`; `grace_days` tells whether a
    past-due subscription still grants).
    """
    feature = get_feature(session, project, key)
    before = describe_feature(feature)
    feature.name = changes.name or feature.name
    feature.unit = None if changes.clear_unit else changes.unit or feature.unit
    status = changes.status or feature.status
    if status != feature.status:
        with outbox.entitlements_change(session, project, now=now, grace_days=grace_days):
            feature.status = status
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="feature.update",
        target=f"feature:{project.key}/{key}",
        project_id=project.id,
        before=before,
        after=describe_feature(feature),
        now=now,
    )
    return feature
