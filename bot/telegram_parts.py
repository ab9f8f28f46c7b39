"""How parts reach Telegram: starting one, the buttons under it, presses on them, people's lines
taking turns, and a group's votes (choices).

A part streams from a task of the bot's own (bot.part_tasks) through the sending Bot. A
person's line (a plain line, /add, /say, /do, a reply to the bot in a group) is stored in
the chat's queue first, so no line is lost to a crash; after every part, the lines that
waited their turn meanwhile join the story and the bot writes one part after them
(bot.turns). A press on ① ② ③ decides at once in a private chat and is a vote in a group
(bot.choices); `choice_clock` closes a group's vote on time, also for votes left open by a
restart.
"""

from __future__ import annotations

import asyncio
import logging
import time

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import TelegramError
from telegram.ext import Application

from bot import choices, texts, turns
from bot.frontend import answering, stream
from bot.part import UserError
from bot.telegram_send import TelegramOutput, call_telegram, cause, topic_of

log = logging.getLogger(__name__)
CLOCK_SECONDS = 1.0  # how often the clock looks for group votes whose time is up


def part_buttons(part) -> InlineKeyboardMarkup:
    """① ② ③ for the beats offered (if any), then 继续 / 重写."""
    rows = [[InlineKeyboardButton(texts.CHOICE_MARKS[i], callback_data=f"o:{part.version}:{part.end}:{i}")
             for i in range(len(part.choices))]] if part.choices else []
    rows.append([InlineKeyboardButton(texts.BUTTON_CONTINUE, callback_data=f"c:{part.version}"),
                 InlineKeyboardButton(texts.BUTTON_REWRITE, callback_data=f"r:{part.version}:{part.start}")])
    return InlineKeyboardMarkup(rows)


def part_output(app: Application, chat_id: int, message=None, thread_id=None, votes=None,
                reply_to=None) -> TelegramOutput:
    """Where a part goes: through the sending Bot (its own connection pool), with its buttons under it."""
    return TelegramOutput(app.bot_data["sender"], chat_id, message, thread_id, buttons=part_buttons, votes=votes,
                          reply_to=reply_to)


def in_group(chat_id: int) -> bool:
    """Telegram gives groups, supergroups and channels negative ids, people positive ones."""
    return chat_id < 0


async def start_part(app: Application, chat_id: int, out: TelegramOutput, action) -> bool:
    """Stream a part from a task of the bot's own (`action()`: its coroutine), then the lines that waited
    meanwhile; past MAX_JOBS parts in flight the chat is told the bot is busy instead (False)."""
    async def part_then_turns() -> None:
        await action()
        if app.bot_data["parts"].take_lines(chat_id):  # lines arrived meanwhile (checked with no await before it)
            await take_turns(app, chat_id)

    if not app.bot_data["parts"].start(chat_id, part_then_turns):
        await out.say(texts.BUSY_GLOBAL)
        return False
    return True


async def take_turns(app: Application, chat_id: int) -> None:
    """While lines wait in the chat: they join the story and the bot writes one part after them. Stops
    when a part is refused or fails (the lines stay queued for the next part, or the next start)."""
    engine, group = app.bot_data["engine"], in_group(chat_id)
    while lines := await answering(engine, part_output(app, chat_id), engine.store.waiting(chat_id)):
        last = lines[-1]
        out = part_output(app, chat_id, thread_id=last.thread_id, votes=group,
                          reply_to=last.message_id if group else None)
        if await answering(engine, out, stream(turns.join_waiting(engine, chat_id), out)) is None:
            return


async def queue_line(app: Application, chat_id: int, message, kind: str, line: str, user_id: int,
                     user_name: str) -> None:
    """A person's line for the story: queued in arrival order, and joined as soon as no part is in flight."""
    engine, out = app.bot_data["engine"], TelegramOutput(app.bot, chat_id, message)
    try:
        queued = await answering(engine, out, turns.wait_turn(engine, chat_id, line, user_id, user_name, kind,
                                                              message.message_id, topic_of(message)))
    except UserError as e:  # told why; nothing was queued
        await out.say(str(e))
        return
    if queued is None:  # a storage failure, told
        return
    place, notice = queued
    if notice:
        await out.say(notice)
    if app.bot_data["parts"].writing(chat_id):  # the part in flight takes the queue's turn when it ends
        app.bot_data["parts"].line_queued(chat_id)
        await out.say(texts.waiting_place(place))
    else:
        await start_part(app, chat_id, part_output(app, chat_id, message), lambda: take_turns(app, chat_id))


async def choice_pressed(app: Application, query, chat_id: int, fields: list[int], group: bool) -> None:
    """① ② ③: in a private chat the beat joins the story at once; in a group it is the member's vote, and the
    part is written as soon as the vote is decided."""
    engine, parts = app.bot_data["engine"], app.bot_data["parts"]
    version, at, option = fields
    user, name = query.from_user.id, query.from_user.full_name
    out = part_output(app, chat_id, thread_id=topic_of(query.message), votes=group)
    answer = None
    if not group:
        started = parts.start(chat_id, lambda: answering(
            engine, out, stream(choices.choose(engine, chat_id, version, at, option, user, name), out)))
    else:
        started = True
        try:
            tally = await answering(engine, out, choices.vote(engine, chat_id, version, at, option, user,
                                                              app.bot_data["config"].choice_seconds))
        except UserError as e:
            tally, answer = None, str(e)
        if tally is not None:
            answer = texts.voted(option, tally.counts, tally.needed)
            if tally.decided is not None and not parts.writing(chat_id):
                started = await decide(app, chat_id, version, at, tally.decided, out)
    try:
        await call_telegram(query.answer, answer)
    except TelegramError as e:  # too old, or the API failing: the press is acted on all the same
        log.warning("could not answer a choice press in chat %s (%s)", chat_id, cause(e))
    if not started:
        await out.say(texts.BUSY_GLOBAL)


async def decide(app: Application, chat_id: int, version: int, at: int, option: int, out) -> bool:
    """A group's vote is decided: the beat joins the story (chosen by everyone) and the bot goes on."""
    engine = app.bot_data["engine"]
    return await start_part(app, chat_id, out, lambda: answering(engine, out, stream(
        choices.choose(engine, chat_id, version, at, option, None, texts.AUTHOR_VOTE), out)))


async def choice_clock(app: Application) -> None:
    """Decide group votes whose time is up (the leading option), once a CLOCK_SECONDS; each choice is tried once."""
    engine, parts = app.bot_data["engine"], app.bot_data["parts"]
    seconds, tried = app.bot_data["config"].choice_seconds, set()
    while True:
        await asyncio.sleep(CLOCK_SECONDS)
        try:
            for chat_id in await engine.store.due_choices(time.time() - seconds):
                choice = await engine.store.choice(chat_id)
                key = (chat_id, choice.version, choice.at) if choice else None
                if choice is None or key in tried or parts.writing(chat_id):
                    continue
                tally = await choices.tally(engine, chat_id, seconds)
                if tally.decided is not None:
                    if len(tried) > 10_000:
                        tried.clear()
                    tried.add(key)
                    await decide(app, chat_id, choice.version, choice.at, tally.decided,
                                 part_output(app, chat_id, thread_id=choice.thread_id, votes=True))
        except Exception as e:  # noqa: BLE001  (a database hiccup: the next tick tries again)
            log.warning("choice clock: %s", e)


async def resume_turns(app: Application) -> None:
    """At start: chats whose lines were waiting when the bot stopped get them joined now."""
    engine = app.bot_data["engine"]
    for chat_id in await engine.store.chats_waiting():
        await start_part(app, chat_id, part_output(app, chat_id), lambda c=chat_id: take_turns(app, c))
