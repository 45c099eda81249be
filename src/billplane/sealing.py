"""Secrets kept sealed at rest, for those billplane must read back (a signing key's private half,
an app webhook endpoint's signing secret): AES-256-GCM under a key HKDF derives from
BILLPLANE_SECRET_KEY.

No cryptography of our own: AES-GCM and HKDF are `cryptography`'s. Each kind of secret derives
its own key (`purpose`, HKDF's info), and the row it belongs to is the associated data
(`context`), so a sealed value copied onto another row, or into another column kind, does not
open.
"""

import base64
import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# A sealed value: this version's tag, then base64url(nonce + ciphertext). The tag leaves room
# for another scheme later without guessing which one a row used.
SEALED_V1 = "v1."
NONCE_BYTES = 12


class Unsealable(Exception):
    """The sealed value does not open with this secret: another BILLPLANE_SECRET_KEY sealed it,
    or it is not a sealed value at all."""


def seal(data: bytes, secret: str, *, purpose: bytes, context: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    box = _sealing_key(secret, purpose).encrypt(nonce, data, context.encode())
    return SEALED_V1 + b64url(nonce + box)


def unseal(sealed: str, secret: str, *, purpose: bytes, context: str) -> bytes:
    """What `seal` sealed, or `Unsealable`."""
    if not sealed.startswith(SEALED_V1):
        raise Unsealable("not a sealed value")
    try:
        box = b64url_decode(sealed.removeprefix(SEALED_V1))
        nonce, ciphertext = box[:NONCE_BYTES], box[NONCE_BYTES:]
        return _sealing_key(secret, purpose).decrypt(nonce, ciphertext, context.encode())
    except (InvalidTag, ValueError):
        raise Unsealable("sealed with another secret") from None


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_V1)


@functools.lru_cache(maxsize=8)
def _sealing_key(secret: str, purpose: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose)
    return AESGCM(derived.derive(secret.encode()))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
