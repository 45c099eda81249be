"""Admin HTTP for tokens: issue, list, rotate, revoke."""

from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from billplane.http import Admin, Now, Tx
from billplane.models import Tenant, Token
from billplane.paging import ListOut
from billplane.projects.service import get_project
from billplane.schemas import Key, PageLimit
from billplane.tenants.service import get_tenant
from billplane.tokens import repository, service
from billplane.tokens.schemas import IssuedTokenOut, TokenIn, TokenOut

router = APIRouter(prefix="/admin/api", tags=["admin"])


def token_out(token: Token, tenant_key: str | None) -> TokenOut:
    return TokenOut(
        id=token.public_id,
        name=token.name,
        prefix=token.prefix,
        tenant=tenant_key,
        created_at=token.created_at,
        rotated_at=token.rotated_at,
        revoked_at=token.revoked_at,
    )


def issued_out(token: Token, tenant_key: str | None, secret: str) -> IssuedTokenOut:
    return IssuedTokenOut(**token_out(token, tenant_key).model_dump(), token=secret)


def tenant_key_of(session: Session, token: Token) -> str | None:
    """The key of the tenant a token is scoped to (None: a project token)."""
    if token.tenant_id is None:
        return None
    tenant = session.get(Tenant, token.tenant_id)
    return tenant.key if tenant else None


@router.post("/projects/{project}/tokens", response_model=IssuedTokenOut, status_code=201)
def issue_token(project: Key, body: TokenIn, actor: Admin, tx: Tx, now: Now) -> Any:
    """A project token, or one scoped to `tenant`; the secret is in `token`, shown only once."""
    with tx.write() as session:
        found = get_project(session, project)
        tenant = get_tenant(session, found, body.tenant) if body.tenant else None
        issued = service.issue_token(
            session, project=found, name=body.name, tenant=tenant, actor=actor, now=now
        )
        return issued_out(issued.token, body.tenant, issued.secret)


@router.get("/projects/{project}/tokens", response_model=ListOut[TokenOut])
def list_tokens(
    project: Key,
    _: Admin,
    tx: Tx,
    limit: PageLimit = 100,
    starting_after: Key | None = None,
) -> Any:
    with tx.read() as session:
        found = get_project(session, project)
        page = repository.list_tokens(session, found.id, limit=limit, starting_after=starting_after)
        return {
            "data": [token_out(t, tenant_key_of(session, t)) for t in page.data],
            "has_more": page.has_more,
        }


@router.post("/tokens/{token_id}/rotate", response_model=IssuedTokenOut)
def rotate_token(token_id: Key, actor: Admin, tx: Tx, now: Now) -> Any:
    """A new secret for the same token; the old one stops working at once."""
    with tx.write() as session:
        issued = service.rotate_token(session, token_id, actor=actor, now=now)
        return issued_out(issued.token, tenant_key_of(session, issued.token), issued.secret)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: Key, actor: Admin, tx: Tx, now: Now) -> Any:
    with tx.write() as session:
        token = service.revoke_token(session, token_id, actor=actor, now=now)
        return token_out(token, tenant_key_of(session, token))
