"""The rules of operating billplane: sessions that end, new tokens shown once, and a limit on
guessing the admin token.

A session is a row: the cookie carries a random secret, the table only its hash, and logging
out deletes the row, so a copy of the cookie opens nothing afterwards (on any worker or server:
the row is the truth). A session lasts `SESSION_LIFETIME` from login at most.

A wrong admin token, from the login form or the admin API alike, is noted against the client's
address; after `FAILURES_ALLOWED` in `FAILURE_WINDOW`, that client is refused before its token
is even compared, until the oldest failure leaves the window. The count lives in the database,
so every worker and server behind a load balancer shares it.
"""

import base64
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from billplane.errors import TooManyAttempts
from billplane.models import OneTimeSecret
from billplane.operators import repository

SESSION_LIFETIME = timedelta(hours=12)
FAILURES_ALLOWED = 10
FAILURE_WINDOW = timedelta(minutes=1)


def is_admin_token(given: str, expected: str | None) -> bool:
    """Compared in constant time: how long it takes says nothing of how much was right."""
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


# --- sessions ----------------------------------------------------------------------------------


def open_session(session: Session, now: datetime) -> str:
    """A new session; returns the secret for the cookie (the only place it exists)."""
    repository.delete_expired_sessions(session, now)
    secret = secrets.token_urlsafe(32)
    repository.add_session(session, _hash(secret), now, now + SESSION_LIFETIME)
    return secret


def session_alive(session: Session, secret: str, now: datetime) -> bool:
    return repository.live_session(session, _hash(secret), now) is not None


def close_session(session: Session, secret: str) -> None:
    repository.delete_session(session, _hash(secret))


def _hash(secret: str) -> str:
    # The secret is 256 random bits: a fast hash suffices (nothing to brute-force).
    return hashlib.sha256(secret.encode()).hexdigest()


# --- one-time secrets --------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """What the cookie keeps of a one-time secret: which row, and the pad that unseals it."""

    id: str
    pad: str


def keep_secret(
    session: Session, session_secret: str, *, secret: str, what: str, now: datetime
) -> Claim | None:
    """Keep `secret` for the session's next page; None when the session has ended."""
    session_id = repository.live_session(session, _hash(session_secret), now)
    if session_id is None:
        return None
    plain = secret.encode()
    pad = secrets.token_bytes(len(plain))
    claim = Claim(id=secrets.token_hex(16), pad=_text(pad))
    sealed = _text(bytes(a ^ b for a, b in zip(plain, pad, strict=True)))
    repository.add_secret(
        session,
        OneTimeSecret(id=claim.id, session_id=session_id, what=what, sealed=sealed, created_at=now),
    )
    return claim


def take_secret(
    session: Session, session_secret: str, claim: Claim, now: datetime
) -> tuple[str, str] | None:
    """`(what, secret)` of the claimed secret, which no longer exists anywhere but in the
    answer; None if it was taken already or its session has ended."""
    session_id = repository.live_session(session, _hash(session_secret), now)
    found = repository.take_secret(session, claim.id, session_id) if session_id else None
    if found is None:
        return None
    sealed, pad = _bytes(found.sealed), _bytes(claim.pad)
    if len(sealed) != len(pad):
        return None
    return found.what, bytes(a ^ b for a, b in zip(sealed, pad, strict=True)).decode()


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def _bytes(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())


# --- guessing the admin token ------------------------------------------------------------------


def refuse_if_throttled(session: Session, client: str, now: datetime) -> None:
    """Raises `TooManyAttempts` while `client` has used up its wrong tokens for the window."""
    count, first = repository.failures_since(session, client, now - FAILURE_WINDOW)
    if count >= FAILURES_ALLOWED and first is not None:
        wait = max(1, math.ceil((first + FAILURE_WINDOW - now).total_seconds()))
        raise TooManyAttempts(
            f"Too many wrong admin tokens from this client: try again in {wait} seconds.",
            retry_after=wait,
        )


def note_failure(session: Session, client: str, now: datetime) -> None:
    repository.delete_failures_before(session, now - FAILURE_WINDOW)
    repository.add_failure(session, client, now)
