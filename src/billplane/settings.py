"""The one settings object, read from the environment or `.env` once and validated at start."""

from functools import lru_cache
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class SettingsError(Exception):
    """A missing or malformed setting, told in one human sentence."""


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

    @field_validator("billplane_admin_token")
    @classmethod
    def _admin_token_long_enough(cls, value: str | None) -> str | None:
        # A short admin token is guessable; refusing it at start beats a weak dashboard login.
        if value is not None and len(value) < 16:
            raise ValueError("must be at least 16 characters")
        return value or None

    @field_validator("billplane_public_url")
    @classmethod
    def _public_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def sqlalchemy_url(self) -> str:
        """The URL for SQLAlchemy: plain `postgresql://` is served by psycopg 3."""
        if self.database_url.startswith("postgresql://"):
            return "postgresql+psycopg://" + self.database_url.removeprefix("postgresql://")
        return self.database_url


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
