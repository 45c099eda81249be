"""HTTP for the keys that sign snapshots: the public JWK Set, and the admin API's list and
rotation (`billplane keys` and the dashboard's Signing keys page do the same)."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from billplane.http import Admin, CurrentSettings, Now, Tx, errors, json_response
from billplane.paging import ListOut
from billplane.signing import repository
from billplane.signing import service as signing
from billplane.signing.schemas import JwksOut, RotatedOut, SigningKeyOut

router = APIRouter(tags=["client"])
admin = APIRouter(prefix="/admin/api", tags=["admin"])

# Verifiers may keep the set a while; one that meets a `kid` it does not know fetches it again.
JWKS_CACHE_CONTROL = "public, max-age=300"


@router.get(signing.JWKS_PATH, response_model=JwksOut, summary="Keys that verify snapshots")
def jwks(tx: Tx, now: Now, settings: CurrentSettings) -> Response:
    """The public keys (RFC 7517 JWK Set, Ed25519) that verify the signed snapshots of
    `GET /v1/tenants/{tenant}/entitlements`, newest first: the current key, then retired keys
    until every snapshot they signed has expired. No token needed. Cacheable for 5 minutes: a
    verifier that meets an unknown `kid` fetches the set again."""
    with tx.read() as session:
        published = signing.published(session, now)
    if not published and settings.billplane_secret_key is not None:
        # Before the first snapshot: make the key that will sign it, so a verifier that fetches
        # the set first finds it there.
        with tx.write() as session:
            signing.first_key(session, settings.billplane_secret_key, now)
            published = signing.published(session, now)
    return json_response(signing.jwks(published), headers={"Cache-Control": JWKS_CACHE_CONTROL})


@admin.get("/signing-keys", response_model=ListOut[SigningKeyOut])
def list_signing_keys(_: Admin, tx: Tx, now: Now, settings: CurrentSettings) -> Any:
    """Every signing key, newest first, with until when the JWK Set lists it (never its private
    half)."""
    secret = settings.billplane_secret_key
    with tx.read() as session:
        found = repository.all_keys(session)
        return {"data": [signing.describe(key, now, secret) for key in found], "has_more": False}


@admin.post(
    "/signing-keys/rotate",
    response_model=RotatedOut,
    responses=errors((503, "BILLPLANE_SECRET_KEY is not set (`signing_not_configured`).")),
)
def rotate_signing_key(actor: Admin, tx: Tx, now: Now, settings: CurrentSettings) -> Any:
    """Make a new signing key, which signs every snapshot from the next request on, in every
    worker. The key it replaces stays in the JWK Set until `published_until`, so snapshots it
    signed keep verifying until they expire. Also the way out when BILLPLANE_SECRET_KEY was
    changed and the current key can no longer be decrypted."""
    secret = settings.billplane_secret_key
    with tx.write() as session:
        rotated = signing.rotate(session, secret, actor=actor, now=now)
        return signing.describe_rotation(rotated, now, secret)
