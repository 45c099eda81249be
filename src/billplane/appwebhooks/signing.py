"""Standard Webhooks signatures: `whsec_` secrets, and the three headers each delivery carries.

Signed by the `standardwebhooks` library, the spec's own, so that an app verifying with it (or
any port of it) agrees with billplane byte for byte.
"""

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the spec's prefix, not a secret
SECRET_BYTES = 24  # as Svix's: 192 bits


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


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
