"""The Telegram adapter: python-telegram-bot handlers over the story engine.

Resources (model, scheduler, database, the sending bot) are opened in post_init and
closed in post_shutdown. Replies are plain text (no parse mode). A part streams from a
task of the bot's own (bot.part_tasks) through a Bot with its own connection pool
(bot.telegram_send), so a slow Bot API never holds up other chats' commands and buttons.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import time

from telegram import BotCommand, Update
from telegram.error import NetworkError, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot import texts, webhook
from bot.config import BotConfig
from bot.engine import StoryEngine, report_failure
from bot.flood import FloodLimiter
from bot.frontend import answering, dispatch, stream
from bot.limits import USER
from bot.part_tasks import PartTasks
from bot.resources import open_resources
from bot.telegram_parts import (
    choice_clock,
    choice_pressed,
    part_output,
    queue_line,
    resume_turns,
    start_part,
)
from bot.telegram_send import CALL_ATTEMPTS, TelegramOutput, call_telegram, cause, topic_of

log = logging.getLogger(__name__)
SHUTDOWN_GRACE = 5.0  # seconds from SIGTERM to exit, whatever is still in flight
REFUSALS_REMEMBERED = 10_000  # users whose last refusal is kept (to stay quiet in a flood); then forgotten
SENDER_POOL = 256  # connections of the Bot that streams parts (apart from the one that answers commands)
# Commands whose answer is a part: streamed from a task of the bot's own.
GENERATING = ("write", "continue", "add", "say", "do")
LINES = {"add": "text", "say": "say", "do": "do"}  # commands whose line joins the story, and its kind

COMMANDS = [
    ("write", "以一段开头写新故事"), ("continue", "接着往下写"), ("add", "把你的一句话加进故事，我接着写"),
    ("temp", "查看或设定温度"),
    ("len", "查看或设定每次写的字数"), ("book", "查看或选择写哪部小说"), ("story", "发送整个故事 (.txt)"),
    ("choices", "每段之后给三个下一步选 (on/off)"), ("role", "扮演一个角色"), ("say", "你的角色说一句话"),
    ("do", "你的角色做一件事"), ("score", "这句话有多少金庸味 (0–100)；on/off 每句都量"),
    ("undo", "撤销最后一段"), ("redo", "恢复刚撤销的一段"), ("reset", "忘掉这个故事"),
    ("help", "用法"),
]
def engine_of_app(app: Application) -> StoryEngine:
    return app.bot_data["engine"]


def engine_of(context: ContextTypes.DEFAULT_TYPE) -> StoryEngine:
    return engine_of_app(context.application)


def allowed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    ids = context.application.bot_data["config"].allowed_user_ids
    user = update.effective_user
    return not ids or (user is not None and user.id in ids)


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


def sender_name(update: Update) -> str:
    """How the story names who wrote a line: the person's name, or the group or channel it was sent as."""
    message = update.effective_message
    if message is not None and message.sender_chat is not None:
        return message.sender_chat.title or ""
    return update.effective_user.full_name if update.effective_user else ""


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
                await TelegramOutput(context.bot, update.effective_chat.id, update.effective_message).say(refusal)
            return
        await handler(update, context)
    wrapper.__doc__ = handler.__doc__
    return wrapper


def command_handler(command: str, doc: str, whole_text: bool = False):
    """A handler that answers `command` as every front end does (bot.frontend.dispatch); a part
    streams from a task of its own and the handler returns at once."""
    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id, message = update.effective_chat.id, update.effective_message
        engine, user = engine_of(context), sender_id(update)
        arg = (message.text or "") if whole_text else command_text(update)  # whole_text: a line, no command word
        if command in LINES:  # a person's line: it waits its turn (stored) and joins when no part is in flight
            await queue_line(context.application, chat_id, message, LINES[command], arg, user, sender_name(update))
        elif command in GENERATING:
            out = part_output(context.application, chat_id, message)
            await start_part(context.application, chat_id, out,
                             lambda: dispatch(engine, chat_id, user, command, arg, out, sender_name(update)))
        else:
            await dispatch(engine, chat_id, user, command, arg, TelegramOutput(context.bot, chat_id, message),
                           sender_name(update))
    handler.__doc__ = doc
    return guarded(handler)


help_command = command_handler("help", "/start and /help: how to use the bot.")
write_command = command_handler("write", "/write 开头: start a new story.")
continue_command = command_handler("continue", "/continue: extend this chat's story.")
temp_command = command_handler("temp", "/temp [value]: show or set the temperature.")
len_command = command_handler("len", "/len [n]: show or set how many characters each part adds.")
choices_command = command_handler("choices", "/choices [on|off]: show, or choose whether three next beats are "
                                             "offered after each part.")
book_command = command_handler("book", "/book [name|auto]: list the novels, or choose the one new stories are "
                                       "written in.")
reset_command = command_handler("reset", "/reset: forget this chat's story.")
story_command = command_handler("story", "/story [who]: send the whole story as a .txt document (who: with authors).")
role_command = command_handler("role", "/role [name|off]: show, set or clear the character this person plays.")
say_command = command_handler("say", "/say 话: the person's character says it, and the bot goes on.")
do_command = command_handler("do", "/do 事: the person's character does it, and the bot goes on.")
score_command = command_handler("score", "/score [text|on|off]: how Jin Yong-like the text reads, 0-100 (none: the "
                                         "person's newest line in the story; on/off: every line people add, told).")
undo_command = command_handler("undo", "/undo: take back the story's newest part, whoever wrote it.")
redo_command = command_handler("redo", "/redo: put back the part /undo took, if nothing was added since.")
answer_unknown = command_handler("unknown", "a command this bot does not have: a hint pointing to /help.")
add_command = command_handler("add", "/add 文字: the person's line joins the story, and the bot goes on from it.")
add_line = command_handler("add", "a plain line in a private chat, or a reply to the bot's message: as /add.",
                           whole_text=True)


async def plain_line(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A line that is not a command: in a private chat, or replying to one of the bot's messages in a group,
    it joins the story (as /add); other group chatter is not for the bot."""
    message = update.effective_message
    replied = message.reply_to_message
    if message.chat.type != "private" and (replied is None or replied.from_user is None
                                           or replied.from_user.id != context.bot.id):
        return
    await add_line(update, context)


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
    """继续 / 重写 buttons under a generated part, and ① ② ③ when choices are offered."""
    query = update.callback_query
    chat_id = query.message.chat.id if query.message is not None else None
    parts = context.application.bot_data["parts"]
    # Presses while the chat's part is in flight are answered with a notice and dropped, not queued. The
    # part starts before any await, so presses that arrive together start one part, not one each.
    writing = chat_id is not None and parts.writing(chat_id)
    kind, numbers = press_data(query.data)
    if kind == "o" and len(numbers) == 3 and not writing:
        group = getattr(query.message.chat, "type", "private") != "private"
        await choice_pressed(context.application, query, chat_id, numbers, group)
        return
    action = None if writing or chat_id is None else press_action(engine_of(context), query, chat_id, kind, numbers)
    out = part_output(context.application, chat_id, thread_id=topic_of(query.message)) if action else None
    started = action is not None and parts.start(chat_id, lambda: answering(engine_of(context), out, action(out)))
    try:
        await call_telegram(query.answer, texts.BUSY_CHAT if writing else None)
    except TelegramError as e:  # too old (after an outage), or the API failing: the press is acted on all the same
        log.warning("could not answer a button press in chat %s (%s); acting on it all the same", chat_id, cause(e))
    if action is not None and not started:
        await out.say(texts.BUSY_GLOBAL)


def press_data(data: str | None) -> tuple[str, list[int]]:
    """A button's callback data: its kind ("c" 继续, "r" 重写, "o" a choice) and its numbers ("", [] if not ours)."""
    try:
        kind, *fields = (data or "").split(":")
        return kind, [int(f) for f in fields]
    except ValueError:
        return "", []


def press_action(engine: StoryEngine, query, chat_id: int, kind: str, numbers: list[int]):
    """What a 继续 / 重写 press asks for: out -> its part's coroutine, or None for data the bot never sent."""
    user = query.from_user.id
    if kind == "c" and len(numbers) == 1:
        return lambda out: stream(engine.continue_story(chat_id, version=numbers[0], user_id=user), out)
    if kind == "r" and len(numbers) == 2:
        return lambda out: stream(engine.rewrite(chat_id, *numbers, user_id=user), out)
    return None


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log any handler exception (the log formatter hides the token) and apologise; a failed poll
    (no update: the polling loop's error) is one warning line, retried with backoff by PTB."""
    if update is None and isinstance(context.error, NetworkError):
        log.warning("Bot API unreachable while polling (%s); retrying with backoff", context.error)
        return
    reply = report_failure(context.error, context.application.bot_data["config"].database_path)
    if isinstance(update, Update) and update.effective_chat:
        try:
            await TelegramOutput(context.bot, update.effective_chat.id, update.effective_message).say(reply)
        except Exception:  # noqa: BLE001  (the apology is best effort)
            log.warning("could not send the apology")


def stop_on_signals(app: Application, stop_serving) -> None:
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
        stop_serving()
        loop.call_later(SHUTDOWN_GRACE, hard_exit)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)


async def post_init(app: Application) -> None:
    config: BotConfig = app.bot_data["config"]
    app.bot_data.update(await open_resources(config, app.bot_data.pop("model"), app.bot_data.pop("held", None)))
    app.bot_data["parts"] = PartTasks(config.max_jobs)
    sender = ExtBot(config.token, base_url=config.base_url, base_file_url=file_url(config.base_url),
                    request=http_request(config, SENDER_POOL), rate_limiter=app.bot.rate_limiter)
    await sender.initialize()
    app.bot_data["sender"] = sender
    stop_on_signals(app, app.bot_data.get("stop_serving") or app.stop_running)
    app.bot_data["clock"] = asyncio.get_running_loop().create_task(choice_clock(app), name="choice clock")
    await resume_turns(app)
    try:
        await app.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
    except Exception as e:  # noqa: BLE001  (commands are a convenience; the bot works without)
        log.warning("setMyCommands failed: %s", e)
    log.info("bot @%s ready", app.bot.username)


async def post_shutdown(app: Application) -> None:
    if "clock" in app.bot_data:
        app.bot_data["clock"].cancel()
    if "parts" in app.bot_data:
        await app.bot_data["parts"].stop()
    if "sender" in app.bot_data:
        await app.bot_data["sender"].shutdown()
    close = app.bot_data.get("close")
    if close:
        await close()


def file_url(base_url: str) -> str:
    """The Bot API's file URL for a base URL: "…/bot" → "…/file/bot" (only the last "/bot")."""
    head, sep, tail = base_url.rpartition("/bot")
    return f"{head}/file/bot{tail}" if sep else base_url


def http_request(config: BotConfig, pool: int) -> HTTPXRequest:
    """A connection pool to the Bot API. A slow answer is waited for rather than given up on: a send
    that timed out is never repeated."""
    return HTTPXRequest(connection_pool_size=pool, proxy=config.proxy or None, connect_timeout=10,
                        read_timeout=config.timeout, write_timeout=config.timeout, pool_timeout=10)


def build_application(config: BotConfig, model, held_lock: int | None = None) -> Application:
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
    app.bot_data["held"] = held_lock  # the database's lock, taken by the start-up check and held to exit
    not_edited = ~filters.UpdateType.EDITED  # an edited message never re-runs a command
    for names, handler in ((["start", "help"], help_command), (["write"], write_command),
                           (["continue"], continue_command), (["temp"], temp_command), (["len"], len_command),
                           (["book"], book_command), (["reset"], reset_command), (["story"], story_command),
                           (["add"], add_command), (["undo"], undo_command), (["redo"], redo_command),
                           (["role"], role_command), (["say"], say_command), (["do"], do_command),
                           (["choices"], choices_command), (["score"], score_command)):
        app.add_handler(CommandHandler(names, handler, filters=not_edited))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & not_edited, plain_line))
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
    # Telegram sends the secret in a header with every post; bot.webhook refuses posts without it.
    secret = config.webhook_secret or secrets.token_urlsafe(32)

    async def serve() -> None:
        stopped = asyncio.Event()
        app.bot_data["stop_serving"] = stopped.set
        await webhook.serve(app, config, secret, ALLOWED_UPDATES, stopped)

    asyncio.run(serve())
