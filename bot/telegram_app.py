"""The Telegram adapter: python-telegram-bot handlers over the story engine.

Resources (model, scheduler, database) are opened in post_init and closed in
post_shutdown. Replies are plain text (no parse mode). Long generations stream:
the reply appears with the first chunk and grows by edits, at most one edit per
second per message; text past 4,096 characters continues in a new message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import time
from urllib.parse import urlsplit

import httpx
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import MessageLimit
from telegram.error import BadRequest, Forbidden, NetworkError, TimedOut
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import texts
from bot.config import BotConfig
from bot.engine import StoryEngine, report_failure
from bot.flood import FloodLimiter
from bot.frontend import answering, dispatch, stream
from bot.limits import USER
from bot.resources import open_resources

log = logging.getLogger(__name__)
SHUTDOWN_GRACE = 5.0  # seconds from SIGTERM to exit, whatever is still in flight
CALL_ATTEMPTS = 9  # tries of one Bot API call (429s and network failures waited out between them)
REFUSALS_REMEMBERED = 10_000  # users whose last refusal is kept (to stay quiet in a flood); then forgotten

COMMANDS = [
    ("write", "以一段开头写新故事"), ("continue", "接着往下写"), ("temp", "查看或设定温度"),
    ("len", "查看或设定每次写的字数"), ("book", "查看或选择写哪部小说"), ("story", "发送整个故事 (.txt)"),
    ("reset", "忘掉这个故事"),
    ("help", "用法"),
]
EDIT_INTERVAL = 1.0  # seconds between edits of one message (Telegram's flood limits)


def never_sent(error: NetworkError) -> bool:
    """True when the request cannot have reached Telegram: the connection never opened, or no
    pooled connection was free (PTB raises its errors from httpx's)."""
    return isinstance(error.__cause__, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


async def call_telegram(fn, /, *args, idempotent: bool = False, **kwargs):
    """Call a Bot API method, waiting out network failures; 'not modified' is not an error.

    (429s are waited out below this, by the application's rate limiter: see build_application.)
    A call that timed out may have reached Telegram, so it is repeated only when
    repeating is harmless (`idempotent`, e.g. an edit to the same text); a send
    that timed out is not sent again, so no text is ever sent twice.
    """
    delay = 1.0
    for _ in range(CALL_ATTEMPTS - 1):
        try:
            return await fn(*args, **kwargs)
        except BadRequest as e:
            if "not modified" in str(e).lower():
                return None
            raise
        except NetworkError as e:  # TimedOut included
            # A connection that never opened carried nothing: safe to repeat. A timeout or a
            # dropped answer may follow a delivered send, so then only idempotent calls repeat.
            timed_out = isinstance(e, TimedOut)
            if not (idempotent or never_sent(e)):
                raise
            log.warning("%s %s; trying again in %.0f s", fn.__name__, "timed out" if timed_out else f"failed ({e})",
                        delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, 30.0)
    return await fn(*args, **kwargs)


class StreamingReply:
    """One part's text on Telegram: pages of at most 4,096 characters, kept up to date by edits."""

    def __init__(self, bot, chat_id: int, limit: int = MessageLimit.MAX_TEXT_LENGTH):
        self.bot, self.chat_id, self.limit = bot, chat_id, limit
        self.sent: list[tuple[int, str]] = []  # (message_id, text shown) per page
        self.last_edit = 0.0

    def pages(self, text: str) -> list[str]:
        return [text[i:i + self.limit] for i in range(0, len(text), self.limit)] or [""]

    async def update(self, text: str) -> None:
        """Show `text` if a second has passed since the last edit (the first text at once), and
        skip the edit while Telegram's budget in all is short (the next one carries its text)."""
        if self.sent and (time.monotonic() - self.last_edit < EDIT_INTERVAL or self.crowded()):
            return
        await self._sync(text, None)

    def crowded(self) -> bool:
        """Telegram's budget in all is short (the bot's FloodLimiter says; a bot without a limiter never is)."""
        limiter = self.bot.rate_limiter
        return limiter is not None and limiter.under_pressure()

    async def finish(self, text: str, markup=None) -> None:
        """Deliver the final text in full, buttons under the last page."""
        wait = EDIT_INTERVAL - (time.monotonic() - self.last_edit)
        if self.sent and wait > 0:
            await asyncio.sleep(wait)
        await self._sync(text, markup)

    async def _sync(self, text: str, markup) -> None:
        pages = [p for p in self.pages(text) if p.strip()]
        if not pages:
            if markup is None:
                return  # nothing visible yet
            pages = ["……"]  # a part of only blank lines still gets its buttons
        for i, page in enumerate(pages):
            last = i == len(pages) - 1
            kb = markup if last else None
            if i < len(self.sent):
                message_id, shown = self.sent[i]
                if shown == page and kb is None:
                    continue
                await call_telegram(self.bot.edit_message_text, page, chat_id=self.chat_id,
                                    message_id=message_id, reply_markup=kb, idempotent=True)
                self.sent[i] = (message_id, page)
            else:
                try:
                    msg = await call_telegram(self.bot.send_message, self.chat_id, page, reply_markup=kb)
                except TimedOut:
                    # It may have arrived: never send it again. While streaming, the next update sends
                    # the grown page as a new message; a timed-out final send is left as it is.
                    log.warning("sending to chat %s timed out after %s; not repeating it", self.chat_id,
                                "the final text" if markup is not None else "a first chunk")
                    return
                self.sent.append((msg.message_id, page))
        self.last_edit = time.monotonic()


def part_buttons(part) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(texts.BUTTON_CONTINUE, callback_data=f"c:{part.version}"),
        InlineKeyboardButton(texts.BUTTON_REWRITE, callback_data=f"r:{part.version}:{part.start}"),
    ]])


def engine_of_app(app: Application) -> StoryEngine:
    return app.bot_data["engine"]


def engine_of(context: ContextTypes.DEFAULT_TYPE) -> StoryEngine:
    return engine_of_app(context.application)


def allowed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    ids = context.application.bot_data["config"].allowed_user_ids
    user = update.effective_user
    return not ids or (user is not None and user.id in ids)


class TelegramOutput:
    """bot.frontend's Output for one chat: messages, a part streamed by edits with its buttons, a document."""

    def __init__(self, bot, chat_id: int, message=None):
        self.bot, self.chat_id, self.message = bot, chat_id, message  # message: the command answered, if any

    async def say(self, text: str) -> None:
        if self.message is not None:
            await call_telegram(self.message.reply_text, text)
        else:
            await call_telegram(self.bot.send_message, self.chat_id, text)

    def part_view(self) -> "TelegramPart":
        return TelegramPart(StreamingReply(self.bot, self.chat_id))

    async def send_story(self, text: str) -> None:
        await call_telegram(self.bot.send_document, self.chat_id, text.encode("utf-8"), filename="story.txt")


class TelegramPart:
    """A part streamed into a chat. If showing it fails (the message was deleted, the bot blocked), the
    part is still written and saved: the text shown stops growing, and the end is sent afresh."""

    def __init__(self, reply: StreamingReply):
        self.reply, self.failed = reply, False

    async def update(self, text: str) -> None:
        if not self.failed:
            self.failed = not await self._shown(self.reply.update(text))

    async def finish(self, text: str, part) -> None:
        if self.failed:  # what was shown is gone: the whole part in new messages
            self.reply = StreamingReply(self.reply.bot, self.reply.chat_id)
        await self._shown(self.reply.finish(text, part_buttons(part)))

    async def _shown(self, call) -> bool:
        try:
            await call
            return True
        except (BadRequest, Forbidden) as e:
            log.warning("could not show a part in chat %s (%s); it is written and saved all the same",
                        self.reply.chat_id, e)
            return False


def command_text(update: Update) -> str:
    """Everything after the command word, newlines kept."""
    parts = (update.effective_message.text or "").split(maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


REFUSAL_QUIET_SECONDS = 10.0  # one "太快了" per user per this many seconds


def sender_id(update: Update) -> int:
    """Who a request's limits are counted for: the user, or the channel or group a message is sent on
    behalf of (anonymous admins and channel posts all come from one shared user account)."""
    message = update.effective_message
    if message is not None and message.sender_chat is not None:
        return message.sender_chat.id
    return update.effective_user.id if update.effective_user else 0


def refused_recently(context: ContextTypes.DEFAULT_TYPE, uid: int) -> bool:
    """True if this user got a refusal in the last few seconds; otherwise note this one."""
    seen: dict = context.application.bot_data.setdefault("refused", {})
    now = time.monotonic()
    if now - seen.get(uid, -1e9) < REFUSAL_QUIET_SECONDS:
        return True
    if len(seen) > REFUSALS_REMEMBERED:
        seen.clear()
    seen[uid] = now
    return False


def guarded(handler):
    """Refuse users outside ALLOWED_USER_IDS, and users over the request rate, before the handler runs."""
    async def wrapper(update: Update, context: ContextTypes.DEFAULT_TYPE):
        refusal, uid = None, sender_id(update)
        if not allowed(update, context):
            refusal = texts.NOT_ALLOWED
        elif over := engine_of(context).limits.request(uid):
            refusal = texts.TOO_FAST if over == USER else texts.BUSY_GLOBAL  # everyone's limit: not this user's doing
        if refusal and refused_recently(context, uid):
            if update.callback_query:  # quiet, but the button's spinner must stop
                await call_telegram(update.callback_query.answer)
            return  # told a moment ago: stay quiet rather than answer every message of a flood
        if refusal:
            if update.callback_query:
                await call_telegram(update.callback_query.answer, refusal)
            elif update.effective_message:
                await call_telegram(update.effective_message.reply_text, refusal)
            return
        await handler(update, context)
    wrapper.__doc__ = handler.__doc__
    return wrapper


def command_handler(command: str, doc: str):
    """A handler that answers `command` as every front end does (bot.frontend.dispatch)."""
    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id
        await dispatch(engine_of(context), chat_id, sender_id(update), command, command_text(update),
                       TelegramOutput(context.bot, chat_id, update.effective_message))
    handler.__doc__ = doc
    return guarded(handler)


help_command = command_handler("help", "/start and /help: how to use the bot.")
write_command = command_handler("write", "/write 开头: start a new story.")
continue_command = command_handler("continue", "/continue: extend this chat's story.")
temp_command = command_handler("temp", "/temp [value]: show or set the temperature.")
len_command = command_handler("len", "/len [n]: show or set how many characters each part adds.")
book_command = command_handler("book", "/book [name|auto]: list the novels, or choose the one new stories are "
                                       "written in.")
reset_command = command_handler("reset", "/reset: forget this chat's story.")
story_command = command_handler("story", "/story: send the whole story as a .txt document.")
answer_unknown = command_handler("unknown", "a command this bot does not have: a hint pointing to /help.")


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any other /command for this bot: a one-line hint pointing to /help."""
    word = (update.effective_message.text or "").split(maxsplit=1)[0]
    _, _, addressee = word.partition("@")
    if addressee and addressee.lower() != (context.bot.username or "").lower():
        return  # in a group, another bot's command
    await answer_unknown(update, context)


async def chat_migrated(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A group became a supergroup: move its story and settings to the new chat id."""
    message = update.effective_message
    if message.migrate_to_chat_id:  # sent in the old group
        old, new = message.chat_id, message.migrate_to_chat_id
    else:  # sent in the new supergroup; whichever arrives first moves it, the other finds nothing
        old, new = message.migrate_from_chat_id, message.chat_id
    await engine_of(context).move_chat(old, new)
    log.info("chat %s became supergroup %s: story and settings moved", old, new)


@guarded
async def button_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """继续 / 重写 buttons under a generated part."""
    query = update.callback_query
    await call_telegram(query.answer)
    if query.message is None:
        return
    chat_id = query.message.chat.id
    engine = engine_of(context)
    try:
        kind, *fields = (query.data or "").split(":")
        numbers = [int(f) for f in fields]
    except ValueError:
        return
    out = TelegramOutput(context.bot, chat_id)
    if kind == "c" and len(numbers) == 1:
        opening = engine.continue_story(chat_id, version=numbers[0], user_id=query.from_user.id)
    elif kind == "r" and len(numbers) == 2:
        opening = engine.rewrite(chat_id, *numbers, user_id=query.from_user.id)
    else:
        return
    await answering(engine, out, stream(opening, out))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log any handler exception (the log formatter hides the token) and apologise."""
    reply = report_failure(context.error, context.application.bot_data["config"].database_path)
    if isinstance(update, Update) and update.effective_chat:
        try:
            await context.bot.send_message(update.effective_chat.id, reply)
        except Exception:  # noqa: BLE001  (the apology is best effort)
            log.warning("could not send the apology")


def stop_on_signals(app: Application) -> None:
    """SIGINT/SIGTERM: abandon the parts in flight (each chat is told, nothing half-written is
    saved), stop polling, and exit within SHUTDOWN_GRACE seconds whatever is still waiting
    (a hung Bot API call, a long 429): PTB alone would wait for every part to finish."""
    loop = asyncio.get_running_loop()

    def hard_exit() -> None:
        log.warning("still stopping after %.0f s: exiting now (everything saved so far stays saved)",
                    SHUTDOWN_GRACE)
        logging.shutdown()
        os._exit(0)

    def stop(signum: int) -> None:
        log.info("signal %d: stopping (parts in flight are abandoned)", signum)
        app.create_task(engine_of_app(app).scheduler.stop())
        app.stop_running()
        loop.call_later(SHUTDOWN_GRACE, hard_exit)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)


async def post_init(app: Application) -> None:
    config: BotConfig = app.bot_data["config"]
    app.bot_data.update(await open_resources(config, app.bot_data.pop("model")))
    stop_on_signals(app)
    try:
        await app.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
    except Exception as e:  # noqa: BLE001  (commands are a convenience; the bot works without)
        log.warning("setMyCommands failed: %s", e)
    log.info("bot @%s ready", app.bot.username)


async def post_shutdown(app: Application) -> None:
    close = app.bot_data.get("close")
    if close:
        await close()


def file_url(base_url: str) -> str:
    """The Bot API's file URL for a base URL: "…/bot" → "…/file/bot" (only the last "/bot")."""
    head, sep, tail = base_url.rpartition("/bot")
    return f"{head}/file/bot{tail}" if sep else base_url


def build_application(config: BotConfig, model) -> Application:
    builder = Application.builder()
    if config.proxy:  # every Bot API request, getUpdates included, goes through it
        builder = builder.proxy(config.proxy).get_updates_proxy(config.proxy)
    app = (builder.token(config.token).base_url(config.base_url)
           .base_file_url(file_url(config.base_url))
           # A slow answer is waited for rather than given up on: a send that timed out is never repeated.
           .connect_timeout(10).read_timeout(config.timeout).write_timeout(config.timeout).pool_timeout(10)
           # Telegram's flood limits for every request to a chat, sends and edits alike (bot.flood): a 429
           # pauses only the chat it was for, then the request is tried again.
           .rate_limiter(FloodLimiter(config.messages_per_second, config.group_messages_per_minute,
                                      max_retries=CALL_ATTEMPTS - 1))
           .concurrent_updates(True).post_init(post_init).post_shutdown(post_shutdown).build())
    app.bot_data["config"] = config
    app.bot_data["model"] = model  # loaded before polling starts, so a bad model fails at once
    not_edited = ~filters.UpdateType.EDITED  # an edited message never re-runs a command
    for names, handler in ((["start", "help"], help_command), (["write"], write_command),
                           (["continue"], continue_command), (["temp"], temp_command), (["len"], len_command),
                           (["book"], book_command), (["reset"], reset_command), (["story"], story_command)):
        app.add_handler(CommandHandler(names, handler, filters=not_edited))
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, chat_migrated))
    # After every CommandHandler of the group: only commands none of them took get here.
    app.add_handler(MessageHandler(filters.COMMAND & not_edited, unknown_command))
    app.add_handler(CallbackQueryHandler(button_pressed))
    app.add_error_handler(on_error)
    return app


ALLOWED_UPDATES = ["message", "callback_query"]


def run(app: Application, config: BotConfig) -> None:
    """Serve updates until stopped: from Telegram's webhook posts when WEBHOOK_URL is set, else by long polling.

    stop_signals=None: post_init installs handlers that bound the stop (stop_on_signals)."""
    if not config.webhook_url:
        app.run_polling(bootstrap_retries=-1, allowed_updates=ALLOWED_UPDATES, stop_signals=None)
        return
    host, port = config.webhook_listen
    # Telegram sends the secret in a header with every post; PTB refuses posts without it.
    secret = config.webhook_secret or secrets.token_urlsafe(32)
    log.info("webhook: listening on %s:%d for %s", host, port, config.webhook_url)
    app.run_webhook(listen=host, port=port, url_path=urlsplit(config.webhook_url).path.lstrip("/"),
                    webhook_url=config.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES,
                    bootstrap_retries=-1, stop_signals=None)
