"""Ed25519 keys for signed snapshots: made, sealed at rest, opened, and published as JWKs.

No cryptography of our own: keys and AES-GCM are `cryptography`'s, the JWS is PyJWT's. A private
key is stored sealed with AES-256-GCM under a key that HKDF derives from BILLPLANE_SECRET_KEY;
its key id is the associated data, so a sealed key copied onto another row does not open.
"""

import base64
import functools
import hashlib
import os
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from billplane.errors import SigningKeyUnreadable

ALGORITHM = "EdDSA"
# A sealed key: this version's tag, then base64url(nonce + ciphertext). The tag leaves room for
# another scheme later without guessing which one a row used.
SEALED_V1 = "v1."
NONCE_BYTES = 12
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
    nonce = os.urandom(NONCE_BYTES)
    return SEALED_V1 + b64url(nonce + _sealing_key(secret).encrypt(nonce, raw, kid.encode()))


def unseal(sealed: str, secret: str, kid: str) -> Ed25519PrivateKey:
    """The private key, or `SigningKeyUnreadable` if `secret` is not the one it was sealed with."""
    try:
        box = _b64url_decode(sealed.removeprefix(SEALED_V1))
        nonce, ciphertext = box[:NONCE_BYTES], box[NONCE_BYTES:]
        raw = _sealing_key(secret).decrypt(nonce, ciphertext, kid.encode())
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (InvalidTag, ValueError):
        raise SigningKeyUnreadable(UNREADABLE.format(kid=kid)) from None


UNREADABLE = (
    "The signing key {kid} cannot be decrypted with this BILLPLANE_SECRET_KEY: it was sealed "
    "with another one. Set the previous BILLPLANE_SECRET_KEY again, or make a new key with "
    "`billplane keys rotate` (or Rotate on the dashboard's Signing keys page)."
)


@functools.lru_cache(maxsize=4)
def _sealing_key(secret: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO)
    return AESGCM(derived.derive(secret.encode()))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
