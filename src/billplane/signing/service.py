"""Signed snapshots of a tenant's entitlements, and the keys that sign them.

One key is current: it signs every snapshot. Rotating retires it and makes a new one; a retired
key stays in the JWK Set until every snapshot it can have signed has expired. Which key signs is
read from the database for every snapshot; a worker keeps only the private keys it opened.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billplane.audit import service as audit
from billplane.errors import SigningKeyUnreadable, SigningNotConfigured, present
from billplane.hotpath import Sql
from billplane.models import SigningKey
from billplane.settings import SNAPSHOT_TTL_MAX
from billplane.signing import keys, repository
from billplane.signing.repository import SigningView
from billplane.signing.schemas import RotatedOut, SigningKeyOut

# A retired key stays published as long as a snapshot it signed can be valid: one is signed at
# the latest when its key is retired, and valid for at most SNAPSHOT_TTL_MAX. The margin covers a
# request that read the key just before a rotation committed, and verifiers' clock skew.
PUBLISHED_AFTER_RETIREMENT = timedelta(seconds=SNAPSHOT_TTL_MAX) + timedelta(minutes=5)
JWKS_PATH = "/.well-known/jwks.json"
MEDIA_TYPE = "application/jwt"
# Two rotations at once: the second finds the first's key taken as current, and goes again.
ROTATE_ATTEMPTS = 3

NOT_CONFIGURED = (
    "Signed snapshots need BILLPLANE_SECRET_KEY, the key that encrypts their signing keys at "
    "rest: set it (e.g. to the output of python3 -c 'import secrets; "
    "print(secrets.token_urlsafe(32))') and restart billplane."
)


def required(secret: str | None) -> str:
    if secret is None:
        raise SigningNotConfigured(NOT_CONFIGURED)
    return secret


class KeyRing:
    """The private keys this process has decrypted, by key id: one per process (`app.state`).

    It never keeps which key signs (see `signing_of`), only the decryption, which would be
    redone per snapshot otherwise. A key id is the thumbprint of its public key, so a key
    decrypted once is the right one for its id for good.
    """

    def __init__(self, secret: str | None) -> None:
        self._secret = secret
        self._opened: dict[str, Ed25519PrivateKey] = {}

    def private_key(self, kid: str, sealed: str) -> Ed25519PrivateKey:
        opened = self._opened.get(kid)
        if opened is None:
            opened = self._opened[kid] = keys.unseal(sealed, required(self._secret), kid)
        return opened


def signing_of(sql: Sql, project_id: int) -> SigningView:
    """The project's snapshot lifetime and the current key (the hot path's one more statement)."""
    return repository.signing_view(sql, project_id)


@dataclass(frozen=True)
class Claims:
    """Who a snapshot is from and for, and when it was made."""

    issuer: str  # the server's public URL
    audience: str  # the project key
    subject: str  # the tenant key
    issued_at: datetime
    ttl_seconds: int


def snapshot(ring: KeyRing, body: Mapping[str, Any], claims: Claims, kid: str, sealed: str) -> str:
    """`body` (the entitlements answer, as its JSON says it) signed as a compact JWS."""
    iat = int(claims.issued_at.timestamp())
    payload = {
        **body,
        "iss": claims.issuer,
        "aud": claims.audience,
        "sub": claims.subject,
        "iat": iat,
        "exp": iat + claims.ttl_seconds,
        "kid": kid,
    }
    return jwt.api_jws.encode(
        orjson.dumps(payload, option=orjson.OPT_UTC_Z),
        ring.private_key(kid, sealed),
        algorithm=keys.ALGORITHM,
        headers={"kid": kid},
    )


def first_key(session: Session, secret: str | None, now: datetime) -> SigningKey:
    """The current key, made now if there is none yet (on the first snapshot, or JWKS, asked).

    Two workers may both find none: the database keeps one current key, and the other worker
    takes that one."""
    sealing = required(secret)
    current = repository.current_key(session)
    if current is not None:
        return current
    try:
        with session.begin_nested():
            return _new_key(session, sealing, now)
    except IntegrityError:
        return present(repository.current_key(session), "the key another worker made")


@dataclass(frozen=True)
class Rotated:
    key: SigningKey
    retired: SigningKey | None


def rotate(session: Session, secret: str | None, *, actor: str, now: datetime) -> Rotated:
    """Retire the current key (it stays published, see `published_until`) and make a new one,
    which signs from now on. Needs only the secret, not the old key: this is also the way out
    when the old key was sealed with a BILLPLANE_SECRET_KEY that is gone."""
    sealing = required(secret)
    for attempt in range(1, ROTATE_ATTEMPTS + 1):
        try:
            with session.begin_nested():
                retired = repository.current_key(session)
                repository.retire_current(session, now)
                key = _new_key(session, sealing, now)
        except IntegrityError:
            if attempt == ROTATE_ATTEMPTS:
                raise
            continue
        audit.record(
            session,
            actor=actor,
            action="signing_key.rotate",
            target=f"signing_key:{key.kid}",
            before={"kid": retired.kid} if retired else None,
            after={"kid": key.kid},
            now=now,
        )
        return Rotated(key, retired)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _new_key(session: Session, secret: str, now: datetime) -> SigningKey:
    made = keys.make()
    key = SigningKey(
        kid=made.kid,
        public_key=made.public_key,
        private_key_sealed=keys.seal(made.private_key, secret, made.kid),
        is_current=True,
        created_at=now,
    )
    repository.add(session, key)
    return key


def published_until(key: SigningKey) -> datetime | None:
    """When a retired key leaves the JWK Set; None while it is current."""
    return None if key.retired_at is None else key.retired_at + PUBLISHED_AFTER_RETIREMENT


def is_published(key: SigningKey, now: datetime) -> bool:
    until = published_until(key)
    return until is None or until > now


def published(session: Session, now: datetime) -> Sequence[SigningKey]:
    """The keys a verifier may need: the current one and those retired too lately to have
    outlived their snapshots, newest first."""
    return repository.published(session, now - PUBLISHED_AFTER_RETIREMENT)


def jwks(published_keys: Sequence[SigningKey]) -> dict[str, Any]:
    return {"keys": [keys.jwk(key.kid, key.public_key) for key in published_keys]}


def describe(key: SigningKey, now: datetime, secret: str | None) -> SigningKeyOut:
    """A key as operators see it (admin API, CLI, dashboard): never its private half."""
    return SigningKeyOut(
        kid=key.kid,
        current=bool(key.is_current),
        created_at=key.created_at,
        retired_at=key.retired_at,
        published_until=published_until(key),
        published=is_published(key, now),
        readable=readable(key, secret),
    )


def describe_rotation(rotated: Rotated, now: datetime, secret: str | None) -> RotatedOut:
    retired = rotated.retired
    return RotatedOut(
        key=describe(rotated.key, now, secret),
        retired=None if retired is None else describe(retired, now, secret),
    )


def readable(key: SigningKey, secret: str | None) -> bool:
    """Whether this server's BILLPLANE_SECRET_KEY opens the key (for the operator's views)."""
    if secret is None:
        return False
    try:
        keys.unseal(key.private_key_sealed, secret, key.kid)
    except SigningKeyUnreadable:
        return False
    return True
