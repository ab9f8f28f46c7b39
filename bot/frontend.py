"""What every front end does alike: which engine call a command makes, how a part streams, how
refusals, shutdowns and failures are told.

The Telegram adapter and the console only say how to show things (an `Output`); both call
`dispatch` for commands and `stream` for parts (a button press in Telegram, /rewrite in the
console), so a command behaves the same in either, failures included.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Protocol

from bot import choices, flavour, history, texts
from bot.engine import StoryEngine, report_failure
from bot.part import Part, PartContext, UserError
from bot.scheduler import Stopped

log = logging.getLogger(__name__)


class PartView(Protocol):
    """One part as it is shown while it grows."""

    async def update(self, text: str) -> None: ...  # the part so far (a front end may skip some)

    async def finish(self, text: str, part: Part) -> None: ...  # the whole part, saved: show it and what comes next


class Output(Protocol):
    """How a front end shows things in one chat."""

    votes: bool  # choices here are a group's vote (else a press decides)
    thread_id: int | None  # the forum topic it shows things in (None: none)

    async def say(self, text: str) -> None: ...

    def part_view(self) -> PartView: ...

    async def send_story(self, text: str) -> None: ...  # /story: the whole story


# Setting commands and the engine method that shows, sets or refuses each.
SETTINGS = {"temp": "temperature", "len": "length", "book": "book", "choices": "choices"}


async def stream(opening: PartContext, out: Output) -> Part | None:
    """Run one generation (engine.write, continue_story, rewrite, join or choices.choose) and show it as it
    grows; the part once it is saved, or None when it was refused or abandoned (the chat is told why).
    With /choices on, the next beats are offered under it."""
    try:
        async with opening as part:
            if part.notice:
                await out.say(part.notice)
            view = out.part_view()
            async for _ in part.pieces():
                await view.update(part.header + part.text)
        # The story is saved and the chat free again before what comes next is offered.
        part.choices = await choices.offer(opening.engine, opening.chat_id, part, opening.user_id, out.votes,
                                           out.thread_id)
        told = await flavour.lines_told(opening.engine, opening.chat_id, opening.opening.parts)
        await view.finish(part.header + part.text + told
                          + texts.options_block([choices.shown(c) for c in part.choices]), part)
        if part.turn:  # it stopped before a character someone plays: their turn
            await out.say(texts.your_turn(part.turn))
        return part
    except UserError as e:
        if not e.quiet:
            await out.say(str(e))
    except Stopped:  # shutting down: the half part is not saved; say so
        await out.say(texts.STOPPED)
    return None


async def dispatch(engine: StoryEngine, chat_id: int, user_id: int, command: str, arg: str, out: Output,
                   user_name: str | None = None) -> None:
    """Answer one command ("write", "temp", …, without the slash) in a chat, failures included (`answering`).
    `user_name`: how the story names the person in `/story who`."""
    await answering(engine, out, _answer(engine, chat_id, user_id, command, arg, out, user_name))


async def answering(engine: StoryEngine, out: Output, action: Awaitable):
    """Await what answers a request and return its result; a failure is logged and told as report_failure
    says (the disk-full line, "数据库正忙…", or an apology), None is returned, and the front end goes on."""
    try:
        return await action
    except UserError:  # a refusal is the caller's to tell
        raise
    except Exception as e:  # noqa: BLE001  (a full disk, a failed round: tell the user, go on)
        reply = report_failure(e, engine.store.path)
        try:
            await out.say(reply)
        except Exception:  # noqa: BLE001  (the apology is best effort)
            log.warning("could not send the apology")
    return None


async def _answer(engine: StoryEngine, chat_id: int, user_id: int, command: str, arg: str, out: Output,
                  user_name: str | None) -> None:
    if command in ("start", "help"):
        await out.say(texts.HELP)
    elif command == "write":
        await stream(engine.write(chat_id, arg, user_id, user_name), out)
    elif command == "continue":
        await stream(engine.continue_story(chat_id, user_id=user_id), out)
    elif command == "add":  # /add 文字, or a plain line (a private chat, a reply to the bot, the console)
        await stream(engine.join(chat_id, arg, user_id, user_name), out)
    elif command in ("say", "do"):  # the person's character speaks or acts
        await stream(engine.join(chat_id, arg, user_id, user_name, kind=command), out)
    elif command == "choose":  # the console's 1 / 2 / 3: arg is "version at option"
        version, at, option = (int(n) for n in arg.split())
        await stream(choices.choose(engine, chat_id, version, at, option, user_id, user_name), out)
    elif command == "role":
        await out.say(await engine.role(chat_id, user_id, arg))
    elif command == "score" and (arg or "").strip().lower() in flavour.SWITCHES:
        await out.say(await flavour.setting(engine, chat_id, arg.strip().lower()))
    elif command == "score":
        await out.say(await flavour.score(engine, chat_id, user_id, arg))
    elif command in ("undo", "redo"):
        answer = await (history.undo if command == "undo" else history.redo)(engine, chat_id)
        if answer:  # None: this chat was told it is busy a moment ago
            await out.say(answer)
    elif command in SETTINGS:
        await out.say(await getattr(engine, SETTINGS[command])(chat_id, arg))
    elif command == "reset":
        answer = await engine.reset(chat_id)
        if answer:  # None: this chat was told it is busy a moment ago
            await out.say(answer)
    elif command == "story" and arg.strip().lower() == "who":
        text = await history.story_with_authors(engine, chat_id)
        await (out.send_story(text) if text is not None else out.say(texts.NO_STORY))
    elif command == "story":
        text = await engine.story_text(chat_id)
        await (out.send_story(text) if text is not None else out.say(texts.NO_STORY))
    else:
        await out.say(texts.UNKNOWN_COMMAND)
