"""Ed25519 keys for signed snapshots: made, sealed at rest, opened, and published as JWKs.

No cryptography of our own: keys are `cryptography`'s, the JWS is PyJWT's. A private key is
stored sealed (`billplane.sealing`: AES-256-GCM under a key HKDF derives from
BILLPLANE_SECRET_KEY); its key id is the associated data, so a sealed key copied onto another row
does not open.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from billplane import sealing
from billplane.errors import SigningKeyUnreadable
from billplane.sealing import b64url

ALGORITHM = "EdDSA"
HKDF_INFO = b"billplane signing keys v1"


@dataclass(frozen=True)
class NewKey:
    kid: str
    public_key: str  # the raw public key, base64url: a JWK's `x`
    private_key: Ed25519PrivateKey


def make() -> NewKey:
    private_key = Ed25519PrivateKey.generate()
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    public_key = b64url(raw)
    return NewKey(thumbprint(public_key), public_key, private_key)


def thumbprint(public_key: str) -> str:
    """The RFC 7638 thumbprint of the public key's JWK: a key id anyone can recompute."""
    canonical = orjson.dumps({"crv": "Ed25519", "kty": "OKP", "x": public_key})
    return b64url(hashlib.sha256(canonical).digest())


def jwk(kid: str, public_key: str) -> dict[str, Any]:
    """The public key as RFC 8037 writes an Ed25519 key in a JWK Set."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": public_key,
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }


def seal(private_key: Ed25519PrivateKey, secret: str, kid: str) -> str:
    raw = private_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return sealing.seal(raw, secret, purpose=HKDF_INFO, context=kid)


def unseal(sealed: str, secret: str, kid: str) -> Ed25519PrivateKey:
    """The private key, or `SigningKeyUnreadable` if `secret` is not the one it was sealed with."""
    try:
        raw = sealing.unseal(sealed, secret, purpose=HKDF_INFO, context=kid)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (sealing.Unsealable, ValueError):
        raise SigningKeyUnreadable(UNREADABLE.format(kid=kid)) from None


UNREADABLE = (
    "The signing key {kid} cannot be decrypted with this BILLPLANE_SECRET_KEY: it was sealed "
    "with another one. Set the previous BILLPLANE_SECRET_KEY again, or make a new key with "
    "`billplane keys rotate` (or Rotate on the dashboard's Signing keys page)."
)
