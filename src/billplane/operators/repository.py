"""All SQL about operators' sessions, their one-time secrets and failed admin tokens."""

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from billplane.models import AdminTokenFailure, OneTimeSecret, OperatorSession


def add_session(session: Session, secret_hash: str, now: datetime, expires_at: datetime) -> None:
    session.add(OperatorSession(secret_hash=secret_hash, created_at=now, expires_at=expires_at))


def live_session(session: Session, secret_hash: str, now: datetime) -> int | None:
    """The id of the session with this hash, unless it has expired."""
    return session.scalar(
        select(OperatorSession.id).where(
            OperatorSession.secret_hash == secret_hash, OperatorSession.expires_at > now
        )
    )


def delete_session(session: Session, secret_hash: str) -> None:
    """Its one-time secrets go with it (ON DELETE CASCADE)."""
    session.execute(delete(OperatorSession).where(OperatorSession.secret_hash == secret_hash))


def delete_expired_sessions(session: Session, now: datetime) -> None:
    session.execute(delete(OperatorSession).where(OperatorSession.expires_at <= now))


def add_secret(session: Session, secret: OneTimeSecret) -> None:
    session.add(secret)


def take_secret(session: Session, secret_id: str, session_id: int) -> OneTimeSecret | None:
    """The session's one-time secret with this id, deleted as it is read."""
    found = session.scalar(
        select(OneTimeSecret).where(
            OneTimeSecret.id == secret_id, OneTimeSecret.session_id == session_id
        )
    )
    if found is not None:
        session.delete(found)
    return found


def failures_since(session: Session, client: str, since: datetime) -> tuple[int, datetime | None]:
    """How many wrong admin tokens `client` sent after `since`, and when the first of them."""
    count, first = session.execute(
        select(func.count(), func.min(AdminTokenFailure.failed_at)).where(
            AdminTokenFailure.client == client, AdminTokenFailure.failed_at > since
        )
    ).one()
    return int(count), first


def add_failure(session: Session, client: str, now: datetime) -> None:
    session.add(AdminTokenFailure(client=client, failed_at=now))


def delete_failures_before(session: Session, before: datetime) -> None:
    session.execute(delete(AdminTokenFailure).where(AdminTokenFailure.failed_at <= before))
