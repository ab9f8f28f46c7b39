"""Updates by webhook: a small tornado server that takes Telegram's posts into the application.

python-telegram-bot's own webhook server buffers up to 100 MB of a request before it looks
at the secret, compares the secret with `!=`, and logs an update it cannot read with the
whole update in the line. Here the secret is checked in constant time from the headers
alone, a body over MAX_BODY bytes is refused before it is read (Telegram's updates are a
few KB), and an unreadable update is dropped with one line that holds none of its text.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from http import HTTPStatus
from urllib.parse import urlsplit

import tornado.httpserver
import tornado.web
from telegram import Update
from telegram.error import NetworkError

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # bytes of one update at most (Telegram's are a few KB)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@tornado.web.stream_request_body
class UpdateHandler(tornado.web.RequestHandler):
    """POST /path: one update, with the secret in Telegram's header."""

    def initialize(self, app, secret: str) -> None:
        self.app, self.secret, self.body = app, secret.encode(), bytearray()

    def prepare(self) -> None:
        # Called once the headers are in, before any of the body is read.
        if self.request.method != "POST":
            raise tornado.web.HTTPError(HTTPStatus.METHOD_NOT_ALLOWED)
        given = self.request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self.secret):
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)
        length = self.request.headers.get("Content-Length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            raise tornado.web.HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)

    def data_received(self, chunk: bytes) -> None:
        if len(self.body) + len(chunk) > MAX_BODY:  # a chunked body that grows past the limit
            raise tornado.web.HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        self.body += chunk

    async def post(self) -> None:
        try:
            update = Update.de_json(json.loads(bytes(self.body)), self.app.bot)
        except Exception as e:  # noqa: BLE001  (anything unreadable is dropped, not logged with its text)
            log.warning("webhook: dropped an update that could not be read (%s)", type(e).__name__)
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST) from None
        if update is not None:
            await self.app.update_queue.put(update)
        self.set_status(HTTPStatus.OK)

    def log_exception(self, typ, value, tb) -> None:  # tornado would log the request; one quiet line
        if not isinstance(value, tornado.web.HTTPError):
            log.warning("webhook: request failed (%s)", typ.__name__ if typ else "?")


def listen(app, host: str, port: int, path: str, secret: str) -> tornado.httpserver.HTTPServer:
    """Serve POST /path on host:port into `app`'s update queue; returns the server (call .stop())."""
    web = tornado.web.Application([(f"/{path.lstrip('/')}", UpdateHandler, {"app": app, "secret": secret})],
                                  log_function=lambda handler: None)  # no access log: URLs and clients stay out
    server = tornado.httpserver.HTTPServer(web, max_body_size=MAX_BODY, max_buffer_size=MAX_BODY)
    server.listen(port, host)
    return server


async def set_webhook(bot, url: str, secret: str, allowed_updates: list[str]) -> None:
    """Tell Telegram where to post, waiting out network failures (the Bot API was reachable at start-up)."""
    delay = 1.0
    while True:
        try:
            await bot.set_webhook(url, secret_token=secret, allowed_updates=allowed_updates)
            return
        except NetworkError as e:
            log.warning("setWebhook failed (%s); trying again in %.0f s", type(e).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, 30.0)


async def serve(app, config, secret: str, allowed_updates: list[str], stopped: asyncio.Event) -> None:
    """The application's whole life in webhook mode, as run_webhook would run it, until `stopped` is set."""
    host, port = config.webhook_listen
    await app.initialize()
    server = None
    try:
        if app.post_init:
            await app.post_init(app)
        server = listen(app, host, port, urlsplit(config.webhook_url).path, secret)
        log.info("webhook: listening on %s:%d for %s", host, port, config.webhook_url)
        await set_webhook(app.bot, config.webhook_url, secret, allowed_updates)
        await app.start()
        await stopped.wait()
    finally:
        if server is not None:
            server.stop()
        if app.running:
            await app.stop()
        if app.post_shutdown:
            await app.post_shutdown(app)
        await app.shutdown()
