"""Issuing, rotating, revoking and recognising API tokens.

A token is shown once; only its SHA-256 is stored. Tokens carry 256 bits of randomness, so a fast
hash is enough (there is nothing to brute-force) and lets every request find its token by index.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from billplane.audit import service as audit
from billplane.errors import Forbidden, TenantNotFound, TokenNotFound, Unauthorized
from billplane.models import Project, Tenant, Token
from billplane.tokens import repository

TOKEN_PREFIX = "bp_"  # noqa: S105 -- the tokens' visible prefix, not a secret
VISIBLE_CHARS = 12


@dataclass(frozen=True)
class Caller:
    """Who is calling the client API: a project, maybe narrowed to one tenant."""

    project: Project
    tenant: Tenant | None
    token_id: str


@dataclass(frozen=True)
class IssuedToken:
    token: Token
    secret: str  # the only moment the plain token exists


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def authenticate(session: Session, secret: str | None) -> Caller:
    """The caller a bearer token stands for; 401 when it is missing, unknown or revoked."""
    found = repository.by_hash(session, token_hash_of(secret))
    if found is None:
        raise unknown_token()
    token, project, tenant = found
    return Caller(project=project, tenant=tenant, token_id=token.public_id)


def token_hash_of(secret: str | None) -> str:
    """The stored hash of a bearer token as sent; 401 when none was sent."""
    if not secret:
        raise Unauthorized("Send your project token as 'Authorization: Bearer <token>'.")
    return hash_token(secret)


def unknown_token() -> Unauthorized:
    return Unauthorized("This token is unknown or has been revoked.")


def other_tenant() -> Forbidden:
    return Forbidden("This token is scoped to another tenant.")


def require_tenant(
    *, project_key: str, scoped_tenant_id: int | None, tenant_key: str, tenant_id: int | None
) -> None:
    """403 outside a tenant-scoped token's tenant; 404 for a tenant the project does not have
    (`tenant_id` None: the project has no tenant `tenant_key`)."""
    if scoped_tenant_id is not None and scoped_tenant_id != tenant_id:
        raise other_tenant()
    if tenant_id is None:
        raise TenantNotFound(f"No tenant '{tenant_key}' in project '{project_key}'.")


def issue_token(
    session: Session,
    *,
    project: Project,
    name: str,
    tenant: Tenant | None,
    actor: str,
    now: datetime,
) -> IssuedToken:
    secret = _new_secret()
    token = Token(
        public_id="tok_" + secrets.token_hex(8),
        project_id=project.id,
        tenant_id=tenant.id if tenant else None,
        name=name,
        prefix=secret[:VISIBLE_CHARS],
        token_hash=hash_token(secret),
        created_at=now,
    )
    repository.add(session, token)
    audit.record(
        session,
        actor=actor,
        action="token.create",
        target=f"token:{token.public_id}",
        project_id=project.id,
        after=describe(token, tenant),
        now=now,
    )
    return IssuedToken(token, secret)


def get_token(session: Session, public_id: str) -> Token:
    token = repository.by_public_id(session, public_id)
    if token is None:
        raise TokenNotFound(f"No token '{public_id}'.")
    return token


def rotate_token(session: Session, public_id: str, *, actor: str, now: datetime) -> IssuedToken:
    """A new secret for the same token and scope; the old secret stops working at once."""
    token = get_token(session, public_id)
    if token.revoked_at is not None:
        raise TokenNotFound(f"Token '{public_id}' is revoked; issue a new one.")
    before = {"prefix": token.prefix}
    secret = _new_secret()
    token.token_hash = hash_token(secret)
    token.prefix = secret[:VISIBLE_CHARS]
    token.rotated_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.rotate",
        target=f"token:{public_id}",
        project_id=token.project_id,
        before=before,
        after={"prefix": token.prefix},
        now=now,
    )
    return IssuedToken(token, secret)


def revoke_token(session: Session, public_id: str, *, actor: str, now: datetime) -> Token:
    token = get_token(session, public_id)
    if token.revoked_at is None:
        token.revoked_at = now
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="token.revoke",
            target=f"token:{public_id}",
            project_id=token.project_id,
            after={"revoked_at": now.isoformat()},
            now=now,
        )
    return token


def describe(token: Token, tenant: Tenant | None) -> dict[str, str | None]:
    return {"name": token.name, "prefix": token.prefix, "tenant": tenant.key if tenant else None}
