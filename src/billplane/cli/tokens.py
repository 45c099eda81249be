"""`billplane token …`: what the admin API does to API tokens, through the same services and
answering the same models (`TokenOut`; `IssuedTokenOut`, whose secret is shown only once)."""

from functools import partial
from typing import Annotated

import typer

from billplane.api.tokens import issued_out, tenant_key_of, token_out
from billplane.cli.edge import ACTOR, every, transaction, valid
from billplane.cli.output import SHOWN_ONCE, AsJson, Fields, show, show_list
from billplane.clock import utc_now
from billplane.projects.service import get_project
from billplane.tenants.service import get_tenant
from billplane.tokens import repository, service
from billplane.tokens.schemas import IssuedTokenOut, TokenIn, TokenOut

token_app = typer.Typer(help="API tokens for client apps.")


def token_fields(out: TokenOut) -> Fields:
    return out.model_dump()


def _issued(out: IssuedTokenOut, as_json: bool) -> None:
    show(out, as_json, token_fields)
    if not as_json:
        typer.echo(SHOWN_ONCE)


@token_app.command("create")
def token_create(
    project: str,
    name: str = "cli",
    tenant: Annotated[str | None, typer.Option(help="Scope the token to this tenant")] = None,
    as_json: AsJson = False,
) -> None:
    """Issue a token and print it (shown only this once)."""
    body = valid(TokenIn, name=name, tenant=tenant)
    with transaction() as session:
        found = get_project(session, project)
        scoped = get_tenant(session, found, body.tenant) if body.tenant else None
        issued = service.issue_token(
            session, project=found, name=body.name, tenant=scoped, actor=ACTOR, now=utc_now()
        )
        out = issued_out(issued.token, body.tenant, issued.secret)
    _issued(out, as_json)


@token_app.command("list")
def token_list(project: str, as_json: AsJson = False) -> None:
    """A project's tokens, revoked ones included (never their secrets)."""
    with transaction(write=False) as session:
        found = get_project(session, project)
        rows = every(partial(repository.list_tokens, session, found.id), lambda t: t.public_id)
        outs = [token_out(t, tenant_key_of(session, t)) for t in rows]
    columns = ["id", "name", "prefix", "tenant", "created_at", "revoked_at"]
    show_list(outs, as_json, token_fields, columns)


@token_app.command("rotate")
def token_rotate(token_id: str, as_json: AsJson = False) -> None:
    """Replace a token's secret; the old one stops working at once."""
    with transaction() as session:
        issued = service.rotate_token(session, token_id, actor=ACTOR, now=utc_now())
        out = issued_out(issued.token, tenant_key_of(session, issued.token), issued.secret)
    _issued(out, as_json)


@token_app.command("revoke")
def token_revoke(token_id: str, as_json: AsJson = False) -> None:
    """Revoke a token: it stops working at once, for good."""
    with transaction() as session:
        token = service.revoke_token(session, token_id, actor=ACTOR, now=utc_now())
        out = token_out(token, tenant_key_of(session, token))
    show(out, as_json, token_fields)
