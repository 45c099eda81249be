"""Apply the Alembic migrations: the only way billplane's schema is ever built; and tell whether a
database is at their head (`/readyz`, and `billplane serve` before it starts)."""

import functools
from dataclasses import dataclass
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("billplane") / "migrations"))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(slug)s")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


class SecretKeyNeeded(Exception):
    """A migration must seal (or open) stored secrets, and BILLPLANE_SECRET_KEY is not set or
    is not the key that sealed them. The message is the operator's sentence."""


def alembic_config_with(database_url: str, secret_key: str | None) -> Config:
    """The config, carrying BILLPLANE_SECRET_KEY for migrations that seal stored secrets."""
    config = alembic_config(database_url)
    config.attributes["billplane_secret_key"] = secret_key
    return config


def upgrade(database_url: str, revision: str = "head", *, secret_key: str | None = None) -> None:
    command.upgrade(alembic_config_with(database_url, secret_key), revision)


def downgrade(database_url: str, revision: str, *, secret_key: str | None = None) -> None:
    command.downgrade(alembic_config_with(database_url, secret_key), revision)


@functools.cache
def _scripts() -> ScriptDirectory:
    # Reads every migration file: once per process.
    return ScriptDirectory.from_config(alembic_config(""))


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema is, against this billplane's migrations."""

    current: tuple[str, ...]  # the revisions it is at; none if it was never migrated
    heads: tuple[str, ...]  # where this billplane's migrations end
    known: bool  # whether this billplane's migrations have every revision it is at

    @property
    def at_head(self) -> bool:
        return set(self.current) == set(self.heads)

    def problem(self) -> str | None:
        """Why this billplane cannot serve the database, as a clause; None when it can."""
        if self.at_head:
            return None
        head = ", ".join(self.heads)
        if not self.current:
            return f"the database has no billplane schema (the migrations' head is {head})"
        at = ", ".join(self.current)
        if not self.known:
            return (
                f"the database is at revision {at}, which this billplane's migrations do not "
                "know (did a newer billplane migrate it?)"
            )
        return f"the database is at revision {at}, behind the migrations' head {head}"


def schema_state(connection: Connection) -> SchemaState:
    """The revisions in the database's `alembic_version` (none if the table is not there).

    Read directly, not through Alembic's `MigrationContext`, which logs two lines each time:
    `/readyz` is asked every few seconds."""
    scripts = _scripts()
    current: tuple[str, ...] = ()
    if inspect(connection).has_table("alembic_version"):
        current = tuple(connection.scalars(text("SELECT version_num FROM alembic_version")))
    known = all(_known(scripts, revision) for revision in current)
    return SchemaState(current=current, heads=tuple(scripts.get_heads()), known=known)


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:  # "Can't locate revision identified by ..."
        return False
