"""A story's history: /undo, /redo and who wrote what (/story who).

Every part is stored with its author and kind (bot.store's `parts` table), so /undo can take
back the newest part whoever wrote it, as far back as the story goes, and /redo put it back
until something new is added. The story then goes on from exactly where its text now ends:
from a state the engine kept there (its newest CHECKPOINTS), or, further back, by reading the
story's tail as after a restart.
"""

from __future__ import annotations

from bot import texts
from bot.engine import StoryEngine
from bot.part import busy
from bot.store import StoredPart


def replay_point(parts: list[StoredPart], text: str) -> int:
    """Where 重写 may start once `parts` are the story's live parts: the newest one if it is the bot's;
    if a person's line is newest, nowhere (len(text): 重写 would take their line with it)."""
    return parts[-1].start if parts and parts[-1].kind == "bot" else len(text)


async def undo(engine: StoryEngine, chat_id: int) -> str | None:
    """/undo: take back the story's newest part (None: the chat is busy and was told so a moment ago)."""
    return await _step(engine, chat_id, back=True)


async def redo(engine: StoryEngine, chat_id: int) -> str | None:
    """/redo: put back the part /undo took most recently, if nothing was added since."""
    return await _step(engine, chat_id, back=False)


async def _step(engine: StoryEngine, chat_id: int, back: bool) -> str | None:
    s = engine.session(chat_id)
    if s.lock.locked():
        notice = busy(s)
        return None if notice.quiet else str(notice)
    async with s.lock:
        story = await engine.store.story(chat_id)
        parts = await engine.store.parts(chat_id) if story else []
        live = [p for p in parts if not p.undone]
        if back:
            if not story or not live:
                return texts.NOTHING_TO_UNDO
            part, rest = live[-1], live[:-1]
            text = story.text[:part.start]
        else:
            undone = [p for p in parts if p.undone]
            if not story or not undone or undone[0].start != len(story.text):
                return texts.NOTHING_TO_REDO
            part, rest = undone[0], live + undone[:1]
            text = story.text + part.text
        if not await engine.store.set_undone(chat_id, story.version, text, replay_point(rest, text), part.seq,
                                             undone=back):
            return texts.STORY_CHANGED
        # The state at the old end no longer is the story's; the next part starts from a kept state or the tail.
        s.version, s.states, s.before_last = story.version, None, None
    engine.forget_if_empty(chat_id, s)
    return texts.undone(who(part), len(part.text)) if back else texts.redone(who(part), len(part.text))


def who(part: StoredPart) -> str:
    """The author as the story shows them: the bot, a person's name, or nobody recorded."""
    if part.kind == "bot":
        return texts.AUTHOR_BOT
    if part.author_name:
        return part.author_name
    return texts.AUTHOR_EARLIER if part.kind == "earlier" else texts.AUTHOR_SOMEONE


async def story_with_authors(engine: StoryEngine, chat_id: int) -> str | None:
    """/story who: each live part in order with its author and kind (None: no story)."""
    story = await engine.store.story(chat_id)
    if not story or not story.text:
        return None
    live = [p for p in await engine.store.parts(chat_id) if not p.undone]
    return "\n\n".join(f"【{i}】{who(p)}（{texts.PART_KINDS.get(p.kind, p.kind)}）\n{p.text.strip()}"
                       + (texts.as_typed(p.typed) if p.typed else "") for i, p in enumerate(live, 1))
