"""In-process apps for tests: one per settings and database, lent to each test in turn.

A new app pays about 100 ms at its first request: FastAPI builds each included route's handler
(dependencies, response models) on the first match. Over the suite's ~1,500 in-process tests
that was minutes. A lent app is the same app, with what a test may change put back first: its
state (settings, Stripe gateway, clock), its dependency overrides and the answers it noted.
"""

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from billplane.app import create_app
from billplane.db import Database
from billplane.settings import Settings
from documented import Answers


@dataclass
class Lent:
    app: FastAPI
    # Every API answer since the app was lent (see `documented`).
    answers: list[tuple[str, str, int]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


_apps: dict[tuple[Database, str], Lent] = {}


def lend_app(settings: Settings, database: Database, clock: Any) -> Lent:
    """The app for `settings` on `database`, as if new, answering with `clock`'s time. The
    caller sets its own dependency overrides (a test's transactions, say)."""
    key = (database, settings.model_dump_json())
    lent = _apps.get(key)
    if lent is None:
        app = create_app(settings, db=database, clock=clock)
        lent = _apps[key] = Lent(app)
        app.add_middleware(Answers, seen=lent.answers)
        lent.state = dict(app.state._state)
    app = lent.app
    app.state._state.clear()
    app.state._state.update(lent.state, clock=clock)
    # Cleared in place: the dashboard sub-app shares this very dict.
    app.dependency_overrides.clear()
    lent.answers.clear()
    return lent
