"""Verifying billplane's signed snapshots (the Python client's `offline` extra), with an Ed25519
key made here: what holds is used, and a tampered, expired, wrong-audience, wrong-tenant or
unknown-`kid` snapshot is refused with its reason. The same against a real billplane that is
then stopped: test_offline_checks.py.
"""

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from billplane_client.snapshots import SnapshotRefused, Snapshots, Verifier
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PROJECT = "realtyos"
NOW = 1_900_000_000.0


@dataclass
class Signer:
    """A signing key as billplane holds one: its kid, and the JWKS that publishes it."""

    kid: str
    key: Ed25519PrivateKey

    @classmethod
    def new(cls, kid: str) -> "Signer":
        return cls(kid, Ed25519PrivateKey.generate())

    def jwk(self) -> dict[str, Any]:
        public = jwt.algorithms.OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid, **header})


def claims(subject: str = "acme", **changes: Any) -> dict[str, Any]:
    """A snapshot's claims as billplane makes them: the entitlements body, then iss/aud/sub."""
    resets = datetime.fromtimestamp(NOW, UTC) + timedelta(days=10)
    body: dict[str, Any] = {
        "tenant": subject,
        "plan": "free",
        "subscription": None,
        "features": [
            {
                "feature": "listings.publish",
                "type": "limit",
                "allowed": True,
                "reason": "ok",
                "limit": 3,
                "used": 1,
                "remaining": 2,
                "resets_at": resets.isoformat().replace("+00:00", "Z"),
            },
            {"feature": "exports", "type": "boolean", "allowed": False, "reason": "not_in_plan"},
        ],
        "iss": "https://billing.realtyos.test",
        "aud": PROJECT,
        "sub": subject,
        "iat": int(NOW) - 60,
        "exp": int(NOW) + 3600,
    }
    return body | changes


@pytest.fixture
def signer() -> Signer:
    return Signer.new("key-2026")


@pytest.fixture
def verifier(signer: Signer) -> Verifier:
    verifier = Verifier(PROJECT)
    verifier.load({"keys": [signer.jwk()]}, now=0)
    return verifier


def test_a_valid_snapshot_is_verified_and_carries_the_entitlements(
    signer: Signer, verifier: Verifier
) -> None:
    snapshot = verifier.verify(signer.sign(claims()), "acme", NOW)

    assert (snapshot.kid, snapshot.expires_at) == ("key-2026", NOW + 3600)
    assert snapshot.entitlements.plan == "free"
    assert snapshot.entitlements.features["listings.publish"].remaining == 2


def _tampered(token: str) -> str:
    """The payload rewritten (a limit of 3 made 300), the signature kept."""
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["features"][0]["limit"] = 300
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _none_algorithm(token: str) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"key-2026"}').rstrip(b"=").decode()
    return f"{header}.{token.split('.')[1]}."


REFUSALS: dict[str, tuple[Callable[[Signer], str], str]] = {
    "tampered": (lambda s: _tampered(s.sign(claims())), "snapshot_bad_signature"),
    "expired": (lambda s: s.sign(claims(exp=int(NOW) - 1)), "snapshot_expired"),
    "wrong audience": (lambda s: s.sign(claims(aud="another-project")), "snapshot_wrong_audience"),
    "wrong tenant": (lambda s: s.sign(claims("globex")), "snapshot_wrong_tenant"),
    "another tenant's body": (
        lambda s: s.sign(claims(tenant="globex")),
        "snapshot_wrong_tenant",
    ),
    "unknown kid": (lambda s: Signer.new("key-other").sign(claims()), "snapshot_unknown_kid"),
    "another key, same kid": (
        lambda s: Signer.new(s.kid).sign(claims()),
        "snapshot_bad_signature",
    ),
    "no signature": (lambda s: _none_algorithm(s.sign(claims())), "snapshot_malformed"),
    "no expiry": (
        lambda s: s.sign({k: v for k, v in claims().items() if k != "exp"}),
        "snapshot_malformed",
    ),
    "not a JWS": (lambda s: "not-a-token", "snapshot_malformed"),
}


@pytest.mark.parametrize(("make", "code"), REFUSALS.values(), ids=REFUSALS.keys())
def test_a_snapshot_that_does_not_hold_is_refused_with_its_reason(
    signer: Signer, verifier: Verifier, make: Callable[[Signer], str], code: str
) -> None:
    with pytest.raises(SnapshotRefused) as refused:
        verifier.verify(make(signer), "acme", NOW)

    assert refused.value.code == code
    assert "refused" in refused.value.message


def test_the_jwks_is_fetched_again_for_a_new_kid_at_most_every_10_seconds(
    verifier: Verifier,
) -> None:
    rotated = Signer.new("key-2027")
    token = rotated.sign(claims())
    verifier.load({"keys": [rotated.jwk(), {"kty": "RSA", "kid": "rsa", "n": "x", "e": "AQAB"}]}, 0)

    assert verifier.knows("key-2027")
    assert not verifier.knows("key-2026")
    assert not verifier.knows("rsa")  # only Ed25519 signing keys are taken
    assert verifier.verify(token, "acme", NOW).kid == "key-2027"
    assert (verifier.may_refresh(9.9), verifier.may_refresh(10.0)) == (False, True)


# --- answering from a held snapshot -------------------------------------------------------------


class WallClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def test_a_held_snapshot_answers_counting_what_was_used_since(
    signer: Signer, verifier: Verifier
) -> None:
    clock = WallClock()
    held = Snapshots(verifier, clock)
    held.put(verifier.verify(signer.sign(claims()), "acme", NOW), held.generation("acme"))

    fresh = held.answer("acme", "listings.publish", 1, queued=0)
    held.counted("acme", "listings.publish", 1)  # recorded through the client since
    one_queued = held.answer("acme", "listings.publish", 1, queued=1)  # one more in the outbox
    exports = held.answer("acme", "exports", 1, queued=0)
    clock.now = NOW + 3600
    expired = held.answer("acme", "listings.publish", 1, queued=0)

    assert fresh is not None
    assert one_queued is not None
    assert exports is not None
    assert (fresh.allowed, fresh.used, fresh.remaining, fresh.offline) == (True, 1, 2, True)
    # 1 in the snapshot + 1 counted since + 1 queued: the last of the limit of 3 is taken.
    assert (one_queued.allowed, one_queued.reason, one_queued.remaining) == (
        False,
        "limit_reached",
        0,
    )
    assert (exports.allowed, exports.reason) == (False, "not_in_plan")
    assert expired is None
    assert held.answer("globex", "listings.publish", 1, queued=0) is None


def test_a_snapshot_fetched_while_usage_was_counted_keeps_what_was_counted(
    signer: Signer, verifier: Verifier
) -> None:
    held = Snapshots(verifier, WallClock())
    held.put(verifier.verify(signer.sign(claims()), "acme", NOW), held.generation("acme"))
    held.counted("acme", "listings.publish", 1)
    before = held.generation("acme")
    held.counted("acme", "listings.publish", 1)  # while the next one was on its way
    newer = signer.sign(claims(iat=int(NOW)))
    held.put(verifier.verify(newer, "acme", NOW), before)
    after_race = held.answer("acme", "listings.publish", 1, queued=0)
    held.put(verifier.verify(newer, "acme", NOW), held.generation("acme"))
    settled = held.answer("acme", "listings.publish", 1, queued=0)

    assert after_race is not None
    assert settled is not None
    assert after_race.used == 3  # maybe counted twice, never missed
    assert settled.used == 1


def test_a_snapshot_whose_period_is_over_does_not_answer(
    signer: Signer, verifier: Verifier
) -> None:
    clock = WallClock()
    held = Snapshots(verifier, clock)
    lasting = signer.sign(claims(exp=int(NOW) + 30 * 86400))
    held.put(verifier.verify(lasting, "acme", NOW), 0)
    clock.now = NOW + 10 * 86400 - 1
    last_second = held.answer("acme", "listings.publish", 1, queued=0)
    clock.now += 1

    assert last_second is not None
    assert held.answer("acme", "listings.publish", 1, queued=0) is None  # the counter restarted
