"""`billplane feature …`: what the admin API does to a project's features, through the same
services and answering the same model (`FeatureOut`)."""

from functools import partial
from typing import Annotated

import typer

from billplane.api.projects import feature_out
from billplane.cli.edge import ACTOR, every, fail, given, one_of, settings, transaction, valid
from billplane.cli.output import AsJson, Fields, show, show_list
from billplane.clock import utc_now
from billplane.projects import repository, service
from billplane.projects.schemas import FeatureIn, FeatureOut, FeaturePatch
from billplane.schemas import Status

feature_app = typer.Typer(help="Features a plan can unlock.")


def feature_fields(out: FeatureOut) -> Fields:
    return out.model_dump()


@feature_app.command("create")
def feature_create(
    project: str,
    key: str,
    type: Annotated[str, typer.Option(help="boolean, limit or metered")] = "boolean",
    name: str | None = None,
    unit: str | None = None,
    as_json: AsJson = False,
) -> None:
    """Add a feature to a project."""
    body = valid(FeatureIn, key=key, name=name or key, type=type, unit=unit)
    with transaction() as session:
        feature = service.create_feature(
            session,
            service.get_project(session, project),
            body,
            actor=ACTOR,
            now=utc_now(),
        )
        out = feature_out(feature)
    show(out, as_json, feature_fields)


@feature_app.command("list")
def feature_list(project: str, as_json: AsJson = False) -> None:
    """A project's features, archived ones included."""
    with transaction(write=False) as session:
        found = service.get_project(session, project)
        rows = every(partial(repository.list_features, session, found.id), lambda f: f.key)
        outs = [feature_out(f) for f in rows]
    show_list(outs, as_json, feature_fields, ["key", "name", "type", "unit", "status"])


@feature_app.command("update")
def feature_update(
    project: str,
    key: str,
    name: Annotated[str | None, typer.Option(help="A new display name")] = None,
    unit: Annotated[str | None, typer.Option(help="A new unit, e.g. listing")] = None,
    no_unit: Annotated[bool, typer.Option("--no-unit", help="Remove the unit.")] = False,
    as_json: AsJson = False,
) -> None:
    """Rename a feature or change its unit; what is not given is kept. Its key and type stay."""
    one_of(**{"--unit": unit is not None, "--no-unit": no_unit})
    changes = given(name=name, unit=unit)
    if no_unit:
        changes["unit"] = None  # given as none: removed, as in the PATCH body
    if not changes:
        fail("error (usage): nothing to change: give --name, --unit or --no-unit.", 2)
    _update(project, key, valid(FeaturePatch, **changes), as_json)


@feature_app.command("archive")
def feature_archive(project: str, key: str, as_json: AsJson = False) -> None:
    """Archive a feature made by mistake: its grants and usage stay, and every check of it is
    refused (`feature_archived`) until it is restored."""
    _set_status(project, key, "archived", as_json)


@feature_app.command("restore")
def feature_restore(project: str, key: str, as_json: AsJson = False) -> None:
    """Make an archived feature checkable again, with the grants and usage it kept."""
    _set_status(project, key, "active", as_json)


def _set_status(project: str, key: str, status: Status, as_json: bool) -> None:
    _update(project, key, valid(FeaturePatch, status=status), as_json)


def _update(project: str, key: str, body: FeaturePatch, as_json: bool) -> None:
    """`PATCH /admin/api/projects/{project}/features/{key}` with this body."""
    with transaction() as session:
        updated = service.update_feature(
            session,
            service.get_project(session, project),
            key,
            service.feature_changes(body),
            actor=ACTOR,
            now=utc_now(),
            grace_days=settings().billplane_past_due_grace_days,
        )
        out = feature_out(updated)
    show(out, as_json, feature_fields)
