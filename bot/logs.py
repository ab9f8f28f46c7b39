"""Logging set-up that never writes the bot token (it is in every Bot API URL)."""

from __future__ import annotations

import logging
import sys
import threading
import traceback

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")  # what LOG_LEVEL may be


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then replaces every secret, tracebacks included."""

    def __init__(self, fmt: str, secrets: list[str]):
        super().__init__(fmt)
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<TOKEN>")
    return text


def redact_uncaught(secrets: list[str]) -> None:
    """Tracebacks that nothing caught are printed with every secret replaced too."""
    def show(kind, value, tb):
        sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb)), secrets))

    sys.excepthook = show
    threading.excepthook = lambda args: show(args.exc_type, args.exc_value, args.exc_traceback)


def setup_logging(level: str = "INFO", secrets: list[str] | None = None) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets or []))
    handler.addFilter(OneLineNetworkErrors())
    handler.addFilter(NoUpdateContent())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level, logging.INFO))
    redact_uncaught(secrets or [])
    # httpx logs every request URL at INFO, and the token is part of each URL.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # python-telegram-bot logs whole updates and requests at DEBUG, aiosqlite every statement with its
    # values: every user's messages and stories. LOG_LEVEL=DEBUG is for this bot's own workings, not
    # for reading people's chats.
    for chatty in ("telegram", "aiosqlite"):
        logging.getLogger(chatty).setLevel(max(logging.INFO, root.level))


# The loggers of PTB's polling loop (telegram.ext.Updater, and its network retry loop's "telegram.ext"), and
# asyncio's, which reports a poll still failing as the bot stops ("Task exception was never retrieved").
POLLING_LOGGERS = ("telegram.ext", "telegram.ext.Updater", "asyncio")
WITHHELD = "<withheld>"


class OneLineNetworkErrors(logging.Filter):
    """PTB logs every failed poll with a full traceback; a network outage deserves one line each,
    and so does a refused token (main prints what to do). Only the polling loop's records are
    rewritten: a failure elsewhere (a part's send) keeps its own cause."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.name not in POLLING_LOGGERS:
            return True
        if exc is not None and type(exc).__module__.startswith("telegram") and \
                type(exc).__name__ in ("NetworkError", "TimedOut"):
            record.msg, record.args = "Bot API unreachable while polling (%s); retrying with backoff", (exc,)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        elif exc is not None and type(exc).__name__ == "InvalidToken":  # main() says so in one line
            record.msg, record.args = "Bot API refused the token", ()
            record.exc_info, record.exc_text = None, None
        return True


class NoUpdateContent(logging.Filter):
    """No line holds what people wrote, at any level: PTB logs an update it cannot read with the
    update itself (at CRITICAL), and an exception's text can quote it. In records of PTB's loggers,
    arguments that are updates or data (dicts, lists, Telegram objects, bytes) are withheld, and a
    traceback is cut to the exception's type."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("telegram"):
            return True
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(WITHHELD if holds_data(a) else a for a in args)
        if record.exc_info and record.exc_info[1] is not None and record.levelno >= logging.ERROR:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__})"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


def holds_data(value) -> bool:
    """An argument that may carry people's text: a container, bytes, or a Telegram object."""
    return isinstance(value, (dict, list, set, bytes, bytearray)) or type(value).__module__.startswith("telegram._")
