"""`billplane project …`: what the admin API does to projects, through the same services and
answering the same models."""

from functools import partial
from typing import Annotated

import typer

from billplane.api.projects import project_out
from billplane.cli.edge import ACTOR, every, fail, given, one_of, transaction, valid
from billplane.cli.output import SHOWN_ONCE, AsJson, Fields, show, show_list
from billplane.clock import utc_now
from billplane.projects import repository, service
from billplane.projects.schemas import NewProjectOut, ProjectIn, ProjectOut, ProjectPatch

project_app = typer.Typer(help="Projects (one per product).")


def project_fields(out: ProjectOut) -> Fields:
    return {
        "key": out.key,
        "name": out.name,
        "origins": out.origins,
        "created_at": out.created_at,
        "snapshot_ttl_seconds": out.snapshot_ttl_seconds or "server default",
    }


@project_app.command("create")
def project_create(
    key: str,
    name: Annotated[str | None, typer.Option(help="Display name (default: the key)")] = None,
    origin: Annotated[list[str] | None, typer.Option(help="An allowed base URL; repeat.")] = None,
    as_json: AsJson = False,
) -> None:
    """Create a project and print its first token (shown only this once)."""
    body = valid(ProjectIn, key=key, name=name or key, origins=origin or [])
    with transaction() as session:
        created = service.create_project(
            session,
            key=body.key,
            name=body.name,
            origins=body.origin_strings(),
            actor=ACTOR,
            now=utc_now(),
        )
        out = NewProjectOut(
            **project_out(created.project).model_dump(),
            token=created.token.secret,
            token_id=created.token.token.public_id,
            token_prefix=created.token.token.prefix,
        )
    show(out, as_json, _new_project_fields)
    if not as_json:
        typer.echo(SHOWN_ONCE)


def _new_project_fields(out: NewProjectOut) -> Fields:
    return {
        **project_fields(out),
        "token_id": out.token_id,
        "token_prefix": out.token_prefix,
        "token": out.token,
    }


@project_app.command("list")
def project_list(as_json: AsJson = False) -> None:
    """Every project."""
    with transaction(write=False) as session:
        rows = every(partial(repository.list_projects, session), lambda p: p.key)
        outs = [project_out(p) for p in rows]
    show_list(outs, as_json, project_fields, ["key", "name", "origins"])


@project_app.command("show")
def project_show(key: str, as_json: AsJson = False) -> None:
    """One project."""
    with transaction(write=False) as session:
        out = project_out(service.get_project(session, key))
    show(out, as_json, project_fields)


@project_app.command("update")
def project_update(
    key: str,
    name: Annotated[str | None, typer.Option(help="A new display name")] = None,
    origin: Annotated[
        list[str] | None,
        typer.Option(help="An allowed base URL; repeat. Replaces all the project's origins."),
    ] = None,
    no_origins: Annotated[
        bool, typer.Option("--no-origins", help="Remove all the project's origins.")
    ] = False,
    snapshot_ttl: Annotated[
        int | None,
        typer.Option(help="How long signed snapshots are valid, in seconds (60 to 86400)."),
    ] = None,
    default_snapshot_ttl: Annotated[
        bool,
        typer.Option(
            "--default-snapshot-ttl", help="Snapshots valid for BILLPLANE_SNAPSHOT_TTL again."
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Rename a project, replace its origins (the base URLs checkout may return to), or set how
    long its signed snapshots are valid."""
    one_of(**{"--origin": bool(origin), "--no-origins": no_origins})
    one_of(
        **{
            "--snapshot-ttl": snapshot_ttl is not None,
            "--default-snapshot-ttl": default_snapshot_ttl,
        }
    )
    changes = given(name=name, origins=[] if no_origins else origin or None)
    if snapshot_ttl is not None or default_snapshot_ttl:
        changes["snapshot_ttl_seconds"] = snapshot_ttl
    if not changes:
        fail(
            "error (usage): nothing to change: give --name, --origin, --no-origins, "
            "--snapshot-ttl or --default-snapshot-ttl.",
            2,
        )
    body = valid(ProjectPatch, **changes)
    with transaction() as session:
        updated = service.update_project(
            session,
            key,
            name=body.name,
            origins=body.origin_strings(),
            actor=ACTOR,
            now=utc_now(),
            snapshot_ttl=service.snapshot_ttl_change(body),
        )
        out = project_out(updated)
    show(out, as_json, project_fields)
