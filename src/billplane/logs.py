"""Logging that never repeats a secret: Stripe keys, webhook secrets and billplane tokens."""

import logging
import re
import traceback

SECRET = re.compile(
    r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9]+|\bbp_[A-Za-z0-9_-]{16,}"
)


def redact(text: str) -> str:
    return SECRET.sub(lambda m: m.group(0)[:8] + "…[redacted]", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and traceback with every secret-looking string masked."""

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
