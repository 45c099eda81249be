"""Bodies of the JWK Set and of the admin API's signing keys."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Jwk(BaseModel):
    """An Ed25519 public key (RFC 8037)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str = Field(description="The raw public key, base64url.")
    kid: str = Field(description="The key id a snapshot's header names: the RFC 7638 thumbprint.")
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class JwksOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "keys": [
                        {
                            "kty": "OKP",
                            "crv": "Ed25519",
                            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                            "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
                            "alg": "EdDSA",
                            "use": "sig",
                        }
                    ]
                }
            ]
        }
    )

    keys: list[Jwk] = Field(description="Newest first: the current key, then retired ones.")


class SigningKeyOut(BaseModel):
    """A signing key as operators see it: never its private half."""

    kid: str
    current: bool = Field(description="Whether it signs new snapshots.")
    created_at: datetime
    retired_at: datetime | None
    published_until: datetime | None = Field(
        description="When it leaves the JWK Set: its retirement plus the longest a snapshot can"
        " live. Null while current."
    )
    published: bool = Field(description="Whether the JWK Set lists it now.")
    readable: bool = Field(
        description="Whether this server's BILLPLANE_SECRET_KEY decrypts its private half (a"
        " current key that is not readable cannot sign: rotate)."
    )


class RotatedOut(BaseModel):
    key: SigningKeyOut = Field(description="The new current key.")
    retired: SigningKeyOut | None = Field(description="The key it replaced, if any.")
