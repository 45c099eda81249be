"""`billplane credits …`: an operator's grant of credits, through the same service and answering
the same model (`GrantOut`) as the admin API."""

from typing import Annotated

import typer

from billplane.cli.edge import ACTOR, transaction, valid
from billplane.cli.output import AsJson, Fields, show
from billplane.clock import utc_now
from billplane.credits import service
from billplane.credits.schemas import GrantIn, GrantOut
from billplane.projects.service import get_project

credits_app = typer.Typer(help="Credits: grants to tenants (pools and prices: the admin API).")


def grant_fields(out: GrantOut) -> Fields:
    return {
        "tenant": out.tenant,
        "pool": out.pool,
        "amount": out.amount,
        "reason": out.reason,
        "idempotency_key": out.idempotency_key,
        "bucket": out.bucket,
        "expires_at": out.expires_at,
    }


@credits_app.command("grant")
def credits_grant(
    project: str,
    tenant: str,
    amount: int,
    reason: Annotated[str, typer.Option(help="Why: kept on the ledger and in the audit trail.")],
    pool: Annotated[str, typer.Option(help="The credit pool.")] = "credits",
    expires_at: Annotated[
        str | None, typer.Option(help="When they expire, ISO 8601 with offset (default: never).")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="The same key again grants nothing more.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Give a tenant credits, with a reason (audited)."""
    body = valid(
        GrantIn,
        pool=pool,
        amount=amount,
        reason=reason,
        expires_at=expires_at,
        idempotency_key=idempotency_key,
    )
    with transaction() as session:
        found = get_project(session, project)
        granted, _ = service.grant(session, found, tenant, body, actor=ACTOR, now=utc_now())
        out = GrantOut.model_validate(granted)
    show(out, as_json, grant_fields)
