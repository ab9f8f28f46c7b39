"""Taking turns: lines that arrive while the bot writes wait, then join the story together.

Every line for the story (a plain line, /add, /say, /do, a reply to the bot in a group) goes
through `wait_turn`: it is checked at once (empty, unreadable, no character: told why, and
nothing is queued), then stored in arrival order, at most WAITING_MAX per chat (past that:
"等一等…"). Whenever the chat has no part in flight, the front end runs `join_waiting`: every
line waiting joins the story, each a paragraph of its own, and the bot writes one part after
the last of them. The lines leave the queue in the transaction that saves that part, so a
line is joined exactly once, also across a crash or restart (the queue is in the database,
and the bot drains it when it starts).
"""

from __future__ import annotations

from bot import texts
from bot.part import PartContext, UserError
from bot.store import NewPart, Waiting

WAITING_MAX = 5  # lines that may wait in one chat


async def wait_turn(engine, chat_id: int, line: str | None, user_id: int, user_name: str | None, kind: str = "text",
                    message_id: int | None = None, thread_id: int | None = None) -> tuple[int, str]:
    """Queue a person's line: (its place, 1 for next; a notice for the chat, "" if none), or UserError saying
    why it cannot join (nothing is queued then)."""
    line, notice = engine.cut_prompt(line)
    text, typed = await engine.line_for(chat_id, line, user_id, kind)
    place = await engine.store.add_waiting(chat_id, Waiting(0, kind, text, user_id, user_name, message_id,
                                                            thread_id, typed), WAITING_MAX)
    if place is None:
        raise UserError(texts.WAIT_FULL)
    return place, notice


def join_waiting(engine, chat_id: int) -> PartContext:
    """Every line waiting in the chat joins the story, and the bot writes one part after the last
    (UserError, quiet, when none is waiting)."""
    async def prepare(s, settings):
        lines = await engine.store.waiting(chat_id)
        if not lines:
            raise UserError("", quiet=True)
        parts = [NewPart(0, w.text, w.kind, w.author_id, w.author_name, w.typed) for w in lines]
        return await engine.opening_with(s, settings, chat_id, parts, waited=lines[-1].seq)

    return engine.part(chat_id, prepare, "", None)
