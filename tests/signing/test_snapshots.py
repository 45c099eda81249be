"""Signed snapshots: entitlements asked as `application/jwt` verify with the JWK Set (PyJWT, as
an app would), carry the JSON answer, live as long as the project says, survive a rotation of
the key, and the private key is sealed at rest."""

from datetime import timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane import sealing
from billplane.db import Database
from billplane.errors import SigningKeyUnreadable
from billplane.models import SigningKey
from billplane.settings import Settings
from billplane.signing import keys
from billplane.signing.service import PUBLISHED_AFTER_RETIREMENT, KeyRing
from conftest import ADMIN_TOKEN, Clock, Setup
from dashboard.conftest import app_client
from factories import subscribe

SECRET = "snapshot-tests-" + "k" * 32
ENTITLEMENTS = "/v1/tenants/acme/entitlements"
JWT = {"Accept": "application/jwt"}
ROTATE = "/admin/api/signing-keys/rotate"
REGISTERED = {"iss", "aud", "sub", "iat", "exp", "kid"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        billplane_admin_token=ADMIN_TOKEN,
        billplane_past_due_grace_days=3,
        billplane_secret_key=SECRET,
    )


def snapshot(setup: Setup, client: TestClient | None = None) -> str:
    response = (client or setup.admin.client).get(ENTITLEMENTS, headers=setup.api.headers | JWT)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/jwt"
    return response.text


def published(client: TestClient) -> dict[str, jwt.PyJWK]:
    response = client.get("/.well-known/jwks.json")  # no token
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "public, max-age=300"
    return {key["kid"]: jwt.PyJWK(key) for key in response.json()["keys"]}


def verified(token: str, key: jwt.PyJWK, audience: str = "realtyos") -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["EdDSA"],
        audience=audience,
        options={"verify_exp": False, "verify_iat": False, "require": list(REGISTERED)},
    )
    return claims


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_a_snapshot_verifies_with_the_jwks_and_holds_the_json_answer(
    realtyos: Setup, session: Session, clock: Clock
) -> None:
    subscribe(
        session,
        project="realtyos",
        tenant="acme",
        status="trialing",
        price="price_pro",
        period_start=clock(),
        period_end=clock() + timedelta(days=30),
        trial_end=clock() + timedelta(days=14),
    )
    token = snapshot(realtyos)
    answer = realtyos.api.get(ENTITLEMENTS).json()

    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": header["kid"]}
    jwks = realtyos.admin.client.get("/.well-known/jwks.json").json()
    assert jwks["keys"] == [keys.jwk(header["kid"], jwks["keys"][0]["x"])]
    assert keys.thumbprint(jwks["keys"][0]["x"]) == header["kid"]  # RFC 7638
    claims = verified(token, published(realtyos.admin.client)[header["kid"]])
    iat = int(clock().timestamp())
    assert {k: claims[k] for k in REGISTERED} == {
        "iss": "http://testserver",  # no BILLPLANE_PUBLIC_URL: the URL the request came to
        "aud": "realtyos",
        "sub": "acme",
        "iat": iat,
        "exp": iat + 3600,
        "kid": header["kid"],
    }
    assert {k: v for k, v in claims.items() if k not in REGISTERED} == answer
    assert claims["subscription"]["trial_end"] == "2026-12-05T12:00:00Z"
    with pytest.raises(jwt.InvalidAudienceError):
        verified(token, published(realtyos.admin.client)[header["kid"]], audience="other")


def test_only_an_accept_naming_application_jwt_gets_a_snapshot(realtyos: Setup) -> None:
    for accept, jws in [
        ("application/jwt", True),
        ("application/json;q=0.5, Application/JWT", True),
        ("application/jwt;q=0, application/json", False),
        ("application/json", False),
        ("*/*", False),
    ]:
        response = realtyos.api.client.get(
            ENTITLEMENTS, headers=realtyos.api.headers | {"Accept": accept}
        )
        assert response.status_code == 200, response.text
        media = response.headers["content-type"]
        assert media == ("application/jwt" if jws else "application/json"), accept


def test_the_project_sets_how_long_its_snapshots_live(realtyos: Setup) -> None:
    project = "/admin/api/projects/realtyos"
    patched = realtyos.admin.call("PATCH", project, json={"snapshot_ttl_seconds": 600})
    assert patched["snapshot_ttl_seconds"] == 600
    claims = jwt.decode(snapshot(realtyos), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 600

    realtyos.admin.call("PATCH", project, json={"name": "Renamed"})  # left out: unchanged
    assert realtyos.admin.call("GET", project)["snapshot_ttl_seconds"] == 600
    realtyos.admin.call("PATCH", project, json={"snapshot_ttl_seconds": None})
    claims = jwt.decode(snapshot(realtyos), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600  # BILLPLANE_SNAPSHOT_TTL's default


def test_after_a_rotation_the_new_key_signs_and_the_old_one_stays_published(
    realtyos: Setup, clock: Clock
) -> None:
    old_token = snapshot(realtyos)
    old_kid = kid_of(old_token)
    clock.advance(minutes=1)

    rotated = realtyos.admin.call("POST", ROTATE)

    new_kid = rotated["key"]["kid"]
    assert (rotated["retired"]["kid"], rotated["key"]["current"]) == (old_kid, True)
    assert rotated["retired"]["published_until"] == "2026-11-22T12:06:00Z"  # + 24 h + 5 min
    new_token = snapshot(realtyos)
    assert kid_of(new_token) == new_kid != old_kid
    jwks = published(realtyos.admin.client)
    assert list(jwks) == [new_kid, old_kid]  # newest first
    assert verified(old_token, jwks[old_kid])["sub"] == "acme"
    assert verified(new_token, jwks[new_kid])["sub"] == "acme"
    with pytest.raises(jwt.InvalidSignatureError):
        verified(new_token, jwks[old_kid])


def test_a_rotation_through_another_worker_holds_at_this_workers_next_snapshot(
    realtyos: Setup, settings: Settings, database: Database, session: Session, clock: Clock
) -> None:
    """Two apps stand for two workers: each keeps the keys it opened, never which one signs."""
    old_kid = kid_of(snapshot(realtyos))  # this worker has opened the current key
    another = settings.model_copy(update={"billplane_public_url": "http://worker-2.test"})

    with app_client(another, database, session, clock) as worker_2:
        rotated = worker_2.post(ROTATE, headers=realtyos.admin.headers)
        assert rotated.status_code == 200, rotated.text

    assert rotated.json()["retired"]["kid"] == old_kid
    assert kid_of(snapshot(realtyos)) == rotated.json()["key"]["kid"]


def test_a_retired_key_leaves_the_jwks_once_its_snapshots_have_expired(
    realtyos: Setup, clock: Clock
) -> None:
    old_kid = kid_of(snapshot(realtyos))
    new_kid = realtyos.admin.call("POST", ROTATE)["key"]["kid"]

    clock.advance(seconds=PUBLISHED_AFTER_RETIREMENT.total_seconds() - 1)
    assert list(published(realtyos.admin.client)) == [new_kid, old_kid]
    clock.advance(seconds=2)
    assert list(published(realtyos.admin.client)) == [new_kid]
    listed = realtyos.admin.call("GET", "/admin/api/signing-keys")["data"]
    assert [(k["kid"], k["current"], k["published"]) for k in listed] == [
        (new_kid, True, True),
        (old_kid, False, False),  # kept in the table, no longer published
    ]


def test_the_private_key_is_sealed_at_rest(
    realtyos: Setup, session: Session, client: TestClient
) -> None:
    kid = kid_of(snapshot(realtyos))

    row = session.scalars(select(SigningKey).where(SigningKey.kid == kid)).one()
    ring: KeyRing = client.app.state.signing_keys  # type: ignore[attr-defined]
    private_key = ring.private_key(kid, row.private_key_sealed)
    raw = private_key.private_bytes_raw()
    assert sealing.b64url(raw) not in row.private_key_sealed
    assert raw.hex() not in row.private_key_sealed
    assert row.private_key_sealed.startswith("v1.")
    assert sealing.b64url(private_key.public_key().public_bytes_raw()) == row.public_key
    with pytest.raises(
        SigningKeyUnreadable, match="cannot be decrypted with this BILLPLANE_SECRET_KEY"
    ):
        keys.unseal(row.private_key_sealed, "another-secret-" + "k" * 32, kid)


def test_a_changed_secret_key_is_named_and_a_rotation_recovers(
    realtyos: Setup,
    settings: Settings,
    database: Database,
    session: Session,
    clock: Clock,
) -> None:
    kid = kid_of(snapshot(realtyos))
    changed = settings.model_copy(update={"billplane_secret_key": "changed-secret-" + "k" * 32})

    with app_client(changed, database, session, clock) as other:
        refused = other.get(ENTITLEMENTS, headers=realtyos.api.headers | JWT)
        assert refused.status_code == 503
        error = refused.json()["error"]
        assert error["code"] == "signing_key_unreadable"
        assert kid in error["message"]
        assert "billplane keys rotate" in error["message"]
        rotated = other.post(ROTATE, headers=realtyos.admin.headers)
        assert rotated.status_code == 200, rotated.text
        assert kid_of(snapshot(realtyos, other)) == rotated.json()["key"]["kid"]
