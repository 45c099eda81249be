"""Logging that never repeats a secret: Stripe keys, webhook secrets and billplane tokens.

One set-up (`logging_config`) for the server's supervisor, its workers and the CLI: every record,
uvicorn's included, goes to stderr through one handler whose formatter masks every secret it
writes, as text or as one JSON object per line (`BILLPLANE_LOG_FORMAT`).
"""

import logging
import logging.config
import re
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypedDict

import orjson

# The kind of secret (kept, to tell a Stripe key from a token), then the secret itself.
SECRET = re.compile(r"\b((?:sk|rk|pk)_(?:test|live)_|whsec_)[A-Za-z0-9]+|\b(bp_)[A-Za-z0-9_-]{16,}")

# The id of the request being served (see `telemetry`); every record logged while serving it
# carries it. Read when a record is formatted: in the thread, and context, that logged it.
REQUEST_ID: ContextVar[str | None] = ContextVar("billplane_request_id", default=None)

# Set on an exception billplane has logged: a second report of it is dropped (`ReportedOnce`).
_LOGGED = "_billplane_logged"


def redact(text: str) -> str:
    """`text` with every secret as its kind alone (`whsec_…[redacted]`): masking what is already
    masked changes nothing, so records may pass several masks."""
    return SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "…[redacted]", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and traceback with every secret-looking string masked.

    On billplane's own logger, so that its records are masked under any logging set-up (a test's,
    an embedding app's); the formatters below mask whatever else reaches billplane's handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info))
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = redact(message), None
        return True


def billplane_logger() -> logging.Logger:
    logger = logging.getLogger("billplane")
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
    return logger


def mark_logged(exc: BaseException) -> None:
    """Say that `exc` has been logged (with its traceback, masked): no one need log it again."""
    setattr(exc, _LOGGED, True)


class ReportedOnce(logging.Filter):
    """Drops uvicorn's report of an exception billplane already logged.

    Starlette answers an unhandled exception with a 500, then raises it again "so that servers
    can log it", and uvicorn does: a second traceback of the same error, which the operator would
    count as a second failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (record.name.startswith("uvicorn") and getattr(error, _LOGGED, False))


class LogLine(TypedDict, total=False):
    """One JSON log line. The request log's records add what the request was and what it got."""

    time: str
    level: str
    logger: str
    message: str
    request_id: str
    method: str
    route: str
    status: int
    duration_ms: float


REQUEST_FIELDS = ("method", "route", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message (with its traceback, if
    any), the request id, and a request log record's fields; a secret in any value is masked."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        line: LogLine = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        fields = {n: getattr(record, n) for n in REQUEST_FIELDS if n in vars(record)}
        # Each value masked before encoding, not the encoded line: in JSON a secret may follow an
        # escape (`\nsk_live_...`), where the pattern would see no word boundary.
        masked = {k: redact(v) if isinstance(v, str) else v for k, v in {**line, **fields}.items()}
        return orjson.dumps(masked).decode()


class TextFormatter(logging.Formatter):
    """`LEVEL logger: message`, the request id last; secrets masked in the whole line."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = REQUEST_ID.get()
        if request_id is not None:
            first, newline, rest = text.partition("\n")
            text = f"{first} [request {request_id}]{newline}{rest}"
        return redact(text)


def logging_config(*, json: bool, level: str = "INFO") -> dict[str, Any]:
    """The set-up, in `logging.config.dictConfig`'s terms (uvicorn applies it in its supervisor
    and again in each worker it starts). uvicorn's loggers keep no handler of their own: their
    records reach the one handler like billplane's do."""
    formatter = JsonFormatter if json else TextFormatter
    uvicorn = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"once": {"()": f"{__name__}.ReportedOnce"}},
        "formatters": {"billplane": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "billplane",
                "filters": ["once"],
            }
        },
        "loggers": {
            **{name: uvicorn for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
            # The Stripe SDK tells of every call at INFO; the gateway logs failures itself.
            "stripe": {"level": "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": level},
    }


def configure(*, json: bool, level: str) -> None:
    """Set logging up for a CLI command, unless something else already did (a test runner, an
    app that embeds billplane): its handlers are left alone."""
    if not logging.getLogger().handlers:
        logging.config.dictConfig(logging_config(json=json, level=level))
