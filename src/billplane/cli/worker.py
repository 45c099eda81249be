"""`billplane worker`: send webhooks to client apps from a process of its own, for set-ups
that run more senders than servers, or none inside `serve` (BILLPLANE_SEND_APP_WEBHOOKS=false).
Any number may run, on any machine: each delivery is claimed by one sender."""

import logging.config
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from billplane.appwebhooks.sender import Sender
from billplane.cli.edge import settings
from billplane.cli.serve import require_migrated
from billplane.db import Database, Transactions
from billplane.logs import billplane_logger, logging_config

log = billplane_logger()


def worker(
    poll: Annotated[
        float, typer.Option(min=0.05, max=60, help="Seconds between looks for work when idle")
    ] = 1.0,
    once: Annotated[
        bool, typer.Option(help="Send what is due now, then stop (for cron or a script)")
    ] = False,
) -> None:
    """Send webhooks to client apps (the outbox) until stopped (SIGTERM or Ctrl-C)."""
    configured = settings()
    if not once:  # a service's logs, as `serve` sets them up; a single run keeps the CLI's
        json = configured.billplane_log_format == "json"
        logging.config.dictConfig(logging_config(json=json))
    require_migrated(configured, False, log.info)
    db = Database.from_settings(configured)
    sender = Sender.from_settings(Transactions(db), configured)
    try:
        if once:
            sender.prune()
            sent = 0
            while batch := sender.run_once():
                sent += batch
            typer.echo(f"{sent} deliveries attempted")
            return
        stop = threading.Event()

        def stopping(signum: int, _frame: FrameType | None) -> None:
            log.info("billplane worker: stopping (%s)", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, stopping)
        signal.signal(signal.SIGINT, stopping)
        log.info("billplane worker: sending webhooks to client apps")
        sender.run(stop, poll=poll)
    finally:
        sender.close()
        db.dispose()
