"""The one settings object, read from the environment or `.env` once and validated at start."""

import ipaddress
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class SettingsError(Exception):
    """A missing or malformed setting, told in one human sentence."""


# What each Stripe setting starts with: secret (or restricted) keys, publishable keys, and the
# signing secret of a webhook endpoint.
STRIPE_PREFIXES: dict[str, tuple[str, ...]] = {
    "stripe_secret_key": ("sk_test_", "sk_live_", "rk_test_", "rk_live_"),
    "stripe_publishable_key": ("pk_test_", "pk_live_"),
    "stripe_webhook_secret": ("whsec_",),
}


KIB = 1024
MIB = 1024 * KIB
# The ORM's pool of PostgreSQL connections in each worker process (admin API, dashboard, Stripe
# webhooks): kept, allowed beyond that under load, and how long a request waits for one before
# it is answered 503. The client API's hot path keeps two connections of its own beside it
# (see `db.CONNECTIONS_PER_WORKER`).
DB_POOL_SIZE, DB_MAX_OVERFLOW, DB_POOL_TIMEOUT = 4, 6, 10.0

# The bounds of a signed snapshot's lifetime, in seconds (a project's own, or the setting). The
# upper one also bounds how long a retired signing key stays published (`signing.service`).
SNAPSHOT_TTL_MIN, SNAPSHOT_TTL_MAX = 60, 86_400


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./billplane.db"
    stripe_secret_key: str | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    billplane_admin_token: str | None = None
    billplane_public_url: str = "http://127.0.0.1:8000"
    billplane_past_due_grace_days: Annotated[int, Field(ge=0, le=365)] = 7
    billplane_log_format: Literal["text", "json"] = "text"
    # One log line per request (request id, route, status, duration): off by default, as the
    # client API's hot path would pay for a line per call. `billplane serve --access-log` sets it.
    billplane_access_log: bool = False
    # When set, `GET /metrics` answers only to `Authorization: Bearer <this token>`.
    billplane_metrics_token: str | None = None
    # Request bodies past these sizes are refused (413) before they are read whole. The API's
    # fits a 1,000-event usage batch with every field at its longest, keys in any script (1.9 MB
    # at most as JSON escapes them), and Stripe's events (a few hundred KB at most) with room.
    billplane_max_body_bytes: Annotated[int, Field(ge=64 * KIB, le=1024 * MIB)] = 2 * MIB
    # The dashboard's forms: the largest, a plan's grants, is a few KB.
    billplane_max_form_bytes: Annotated[int, Field(ge=4 * KIB, le=1024 * MIB)] = 64 * KIB
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: comma-separated addresses
    # or networks (`10.0.0.0/8`), `*` for any. Empty: the peer is the client, whatever it says.
    billplane_trusted_proxies: str = ""
    billplane_db_pool_size: Annotated[int, Field(ge=1, le=1000)] = DB_POOL_SIZE
    billplane_db_max_overflow: Annotated[int, Field(ge=0, le=1000)] = DB_MAX_OVERFLOW
    billplane_db_pool_timeout: Annotated[float, Field(gt=0, le=600)] = DB_POOL_TIMEOUT
    # Off behind PgBouncer in transaction mode older than 1.21 (or with max_prepared_statements
    # = 0): psycopg prepares a statement run five times on one connection, and PgBouncer would
    # send its next run to a server connection that never saw it prepared.
    billplane_db_prepared_statements: bool = True
    # The refusal log (refused checks and 402s, for "why was this refused?"): how long a refusal
    # is kept, and how many a project keeps at most (the newest).
    billplane_refusals_keep_days: Annotated[int, Field(ge=1, le=3650)] = 30
    billplane_refusals_max_per_project: Annotated[int, Field(ge=100, le=100_000_000)] = 100_000
    # Seals at rest the signing keys of snapshots and the secrets of app webhook endpoints (see
    # `billplane.sealing`). Unset: snapshots are refused with `signing_not_configured`, new
    # endpoints with `secret_key_not_configured`. Changed: what it sealed cannot be read any more.
    billplane_secret_key: str | None = None
    # How long a signed snapshot is valid, for projects that do not set their own.
    billplane_snapshot_ttl: Annotated[int, Field(ge=SNAPSHOT_TTL_MIN, le=SNAPSHOT_TTL_MAX)] = 3600
    # Every `billplane serve` worker runs a sender of webhooks to client apps (claims keep each
    # delivery to one sender); false where `billplane worker` processes send them instead.
    billplane_send_app_webhooks: bool = True
    # How long app webhook events are kept once none of their deliveries waits any more.
    billplane_app_webhooks_keep_days: Annotated[int, Field(ge=1, le=3650)] = 30
    # Seconds a client app has to answer a webhook delivery; a sender's claim on a delivery
    # lasts 8 times as long (a sender that died leaves its deliveries to another after that).
    billplane_app_webhooks_timeout: Annotated[float, Field(ge=0.1, le=300)] = 15.0
    # Seconds before a failed delivery is tried again the first time; each next wait is 3 times
    # longer (at most 12 hours), for three days. Shortened in tests that run on a real clock.
    billplane_app_webhooks_first_retry: Annotated[float, Field(ge=0.01, le=3600)] = 5.0

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:// or postgresql://")
        try:
            make_url(value)
        except (ArgumentError, ValueError):
            # The message says nothing of the URL itself: it may carry a password.
            raise ValueError("is not a valid database URL") from None
        return value

    @field_validator("billplane_admin_token", "billplane_metrics_token")
    @classmethod
    def _token_long_enough(cls, value: str | None) -> str | None:
        # A short token is guessable; refusing it at start beats a weak login.
        if value is not None and len(value) < 16:
            raise ValueError("must be at least 16 characters")
        return value or None

    @field_validator("billplane_secret_key")
    @classmethod
    def _secret_key_long_enough(cls, value: str | None) -> str | None:
        # The key that encrypts the signing keys: a short one could be guessed offline from a
        # copy of the database.
        if value and len(value) < 32:
            raise ValueError(
                "must be at least 32 characters (e.g. python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        return value or None

    @field_validator("stripe_secret_key", "stripe_publishable_key", "stripe_webhook_secret")
    @classmethod
    def _stripe_key_of_its_kind(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A key of the wrong kind (a publishable key as the secret, a typo) would only fail at
        # the first payment; said at start, with what was expected and never the value itself.
        if not value:
            return None
        prefixes = STRIPE_PREFIXES[info.field_name or ""]
        if not value.startswith(prefixes) or value in prefixes or any(c.isspace() for c in value):
            kinds = " or ".join(f"{p}…" for p in prefixes)
            raise ValueError(f"must be a Stripe key of the form {kinds} (from Stripe's dashboard)")
        return value

    @field_validator("billplane_public_url")
    @classmethod
    def _public_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("billplane_trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        listed = _listed(value)
        if listed == ["*"]:
            return value
        for proxy in listed:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    "must be * alone or list IP addresses or networks "
                    f"(e.g. 10.0.0.1,10.1.0.0/16), not {proxy!r}"
                ) from None
        return value

    @property
    def trusted_proxies(self) -> list[str]:
        return _listed(self.billplane_trusted_proxies)

    @property
    def served_over_https(self) -> bool:
        return self.billplane_public_url.startswith("https://")

    @property
    def public_url_set(self) -> bool:
        """Whether BILLPLANE_PUBLIC_URL was given, rather than left at its local default."""
        return "billplane_public_url" in self.model_fields_set

    @property
    def sqlalchemy_url(self) -> str:
        """The URL for SQLAlchemy: plain `postgresql://` is served by psycopg 3."""
        if self.database_url.startswith("postgresql://"):
            return "postgresql+psycopg://" + self.database_url.removeprefix("postgresql://")
        return self.database_url


def _listed(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def load_settings() -> Settings:
    """Read the settings, turning a validation failure into one sentence (never a traceback)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()} {_sentence_part(err['msg'])}"
            for err in exc.errors()
        )
        raise SettingsError(f"billplane cannot start: {problems}.") from None


def _sentence_part(message: str) -> str:
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
