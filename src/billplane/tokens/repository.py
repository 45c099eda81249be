"""All SQL about tokens."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.models import Project, Tenant, Token
from billplane.paging import Page, page_of


def by_hash(session: Session, token_hash: str) -> tuple[Token, Project, Tenant | None] | None:
    """The live token with this hash, with its project and (for a scoped token) its tenant."""
    row = session.execute(
        select(Token, Project, Tenant)
        .join(Project, Project.id == Token.project_id)
        .outerjoin(Tenant, Tenant.id == Token.tenant_id)
        .where(Token.token_hash == token_hash, Token.revoked_at.is_(None))
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def by_public_id(session: Session, public_id: str) -> Token | None:
    return session.scalar(select(Token).where(Token.public_id == public_id))


def list_tokens(
    session: Session, project_id: int, *, limit: int, starting_after: str | None
) -> Page[Token]:
    query = select(Token).where(Token.project_id == project_id)
    return page_of(session, query, Token.public_id, limit, starting_after)


def live_project_prefixes(session: Session, project_ids: list[int]) -> dict[int, list[str]]:
    """The visible prefixes of each project's live project-wide tokens, oldest first."""
    rows = session.execute(
        select(Token.project_id, Token.prefix)
        .where(
            Token.project_id.in_(project_ids),
            Token.tenant_id.is_(None),
            Token.revoked_at.is_(None),
        )
        .order_by(Token.created_at, Token.id)
    )
    prefixes: dict[int, list[str]] = {}
    for project_id, prefix in rows:
        prefixes.setdefault(project_id, []).append(prefix)
    return prefixes


def add(session: Session, token: Token) -> None:
    session.add(token)
    session.flush()
