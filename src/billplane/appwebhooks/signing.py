"""Standard Webhooks signatures: `whsec_` secrets, sealed at rest, and the three headers each
delivery carries.

Signed by the `standardwebhooks` library, the spec's own, so that an app verifying with it (or
any port of it) agrees with billplane byte for byte. A secret must be read back to sign, so it
cannot be kept as a hash the way API tokens are: it is sealed as signing keys are
(`billplane.sealing`), with its endpoint's id as the associated data.
"""

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook

from billplane import sealing
from billplane.errors import EndpointSecretUnreadable, SecretKeyNotConfigured

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the spec's prefix, not a secret
SECRET_BYTES = 24  # as Svix's: 192 bits
SEALING_PURPOSE = b"billplane app webhook secrets v1"

NOT_CONFIGURED = (
    "Webhooks to client apps need BILLPLANE_SECRET_KEY, the key that encrypts their signing "
    "secrets at rest: set it (e.g. to the output of python3 -c 'import secrets; "
    "print(secrets.token_urlsafe(32))') and restart billplane."
)
UNREADABLE = (
    "The signing secret of webhook endpoint {endpoint} cannot be decrypted with this "
    "BILLPLANE_SECRET_KEY: it was sealed with another one. Set the previous "
    "BILLPLANE_SECRET_KEY again, or rotate the endpoint's secret (and give the app the new one)."
)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sealing_key(secret_key: str | None) -> str:
    if secret_key is None:
        raise SecretKeyNotConfigured(NOT_CONFIGURED)
    return secret_key


def seal(secret: str, secret_key: str, endpoint: str) -> str:
    """`secret` sealed for the endpoint whose public id is `endpoint`."""
    return sealing.seal(secret.encode(), secret_key, purpose=SEALING_PURPOSE, context=endpoint)


def unseal(sealed: str, secret_key: str, endpoint: str) -> str:
    """The secret, or `EndpointSecretUnreadable` if `secret_key` did not seal it."""
    try:
        opened = sealing.unseal(sealed, secret_key, purpose=SEALING_PURPOSE, context=endpoint)
    except sealing.Unsealable:
        raise EndpointSecretUnreadable(UNREADABLE.format(endpoint=endpoint)) from None
    return opened.decode()


def headers(
    secrets_: list[str], *, message_id: str, timestamp: datetime, body: str
) -> dict[str, str]:
    """The headers of one attempt: `webhook-signature` holds one `v1,` signature per secret
    (the current one, and the one a rotation replaced while it still signs)."""
    signatures = " ".join(
        Webhook(secret).sign(msg_id=message_id, timestamp=timestamp, data=body)
        for secret in secrets_
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }
