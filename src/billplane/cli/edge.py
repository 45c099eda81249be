"""What every administering command shares: the settings read once, input checked by the admin
API's own schemas, one transaction per step, and expected failures as one line and an exit code.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, Protocol, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session

from billplane.db import Database
from billplane.errors import BillplaneError
from billplane.paging import Page
from billplane.settings import Settings, SettingsError, load_settings

ACTOR = "cli"
BAD_DATABASE_URL = "billplane cannot start: DATABASE_URL is not a valid database URL."
# How many rows a list command reads per statement; it reads them all, page by page.
PAGE = 500

Schema = TypeVar("Schema", bound=BaseModel)
Row = TypeVar("Row")


class Listing(Protocol[Row]):
    """A repository's paged listing, its session and parent already given (`functools.partial`)."""

    def __call__(self, *, limit: int, starting_after: str | None) -> Page[Row]: ...


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        found = load_settings()
        make_url(found.sqlalchemy_url)  # e.g. a port that is not a number
    except SettingsError as exc:
        fail(str(exc), 2)
    except (ArgumentError, ValueError):
        # Not the parser's message: it may quote the URL, password included.
        fail(BAD_DATABASE_URL, 2)
    return found


def valid(schema: type[Schema], **fields: Any) -> Schema:
    """The input checked by the admin API's own schema: the CLI refuses what the API refuses."""
    try:
        return schema.model_validate(fields)
    except ValidationError as exc:
        # The deepest error is the telling one: for `pub=5/weekly` the grant's `reset`, not the
        # union's other branch ("should be a valid boolean").
        worst = max(exc.errors(), key=lambda e: len(e["loc"]))
        param = ".".join(str(p) for p in worst["loc"])
        fail(f"error (validation_error): {param}: {worst['msg']}", 2)


@contextmanager
def transaction(*, write: bool = True) -> Iterator[Session]:
    """One transaction on the configured database; expected failures become one line."""
    configured = settings()
    try:
        db = Database.from_settings(configured)
    except ArgumentError:
        fail(BAD_DATABASE_URL, 2)
    try:
        with db.session_scope(write=write) as session:
            yield session
    except BillplaneError as exc:
        fail(f"error ({exc.code}): {exc.message}")
    except DBAPIError as exc:
        fail(database_error(configured, exc))
    finally:
        db.dispose()


def every(listing: Listing[Row], key: Callable[[Row], str]) -> list[Row]:
    """All rows of a paged listing, in its order (by `key`): a list command shows them all."""
    rows: list[Row] = []
    while True:
        page = listing(limit=PAGE, starting_after=key(rows[-1]) if rows else None)
        rows += page.data
        if not page.has_more or not page.data:
            return rows


def database_error(configured: Settings, exc: DBAPIError) -> str:
    """One line for a database that is unreachable or refuses: the driver's first line says why."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    return f"error (database): {redacted(configured.database_url)}: {reason}"


def redacted(url: str) -> str:
    # A database URL can carry a password; show only where it points.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


def given(**options: Any) -> dict[str, Any]:
    """The options a command was given (not None): an edit changes only those."""
    return {k: v for k, v in options.items() if v is not None}


def one_of(**flags: bool) -> None:
    """Options that contradict each other (`--price` and `--no-price`) are a usage error."""
    chosen = [name for name, on in flags.items() if on]
    if len(chosen) > 1:
        fail(f"error (usage): {' and '.join(chosen)} contradict each other; give one.", 2)
