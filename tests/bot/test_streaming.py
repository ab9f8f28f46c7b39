"""StreamingReply on a recording stand-in for the Bot: 4,096-character pages, final text in full."""

import asyncio
from types import SimpleNamespace

from bot import telegram_send
from bot.frontend import stream
from bot.telegram_send import StreamingReply


class RecordingBot:
    rate_limiter = None  # as python-telegram-bot's Bot without one

    def __init__(self):
        self.messages, self.next_id = {}, 1

    async def send_message(self, chat_id, text, reply_markup=None, **where):
        assert 0 < len(text) <= 4096
        self.messages[self.next_id] = (text, reply_markup)
        self.next_id += 1
        return SimpleNamespace(message_id=self.next_id - 1)

    async def edit_message_text(self, text, chat_id, message_id, reply_markup=None):
        assert 0 < len(text) <= 4096
        self.messages[message_id] = (text, reply_markup)


def test_long_text_continues_in_new_messages_with_buttons_on_the_last(monkeypatch):
    monkeypatch.setattr(telegram_send, "EDIT_INTERVAL", 0.0)
    bot = RecordingBot()
    reply = StreamingReply(bot, chat_id=1)
    text = "".join(chr(0x4E00 + i % 500) for i in range(9000))

    async def go():
        for end in range(100, 9001, 700):
            await reply.update(text[:end])
        await reply.finish(text, markup="BUTTONS")

    asyncio.run(go())
    pages = [bot.messages[i] for i in sorted(bot.messages)]
    assert "".join(t for t, _ in pages) == text
    assert [len(t) for t, _ in pages] == [4096, 4096, 808]
    assert [m for _, m in pages] == [None, None, "BUTTONS"]


def test_updates_within_a_second_are_skipped_but_the_final_text_is_not():
    bot = RecordingBot()
    reply = StreamingReply(bot, chat_id=1)

    async def go():
        await reply.update("乔峰")  # the first text goes out at once
        await reply.update("乔峰带阿")  # too soon for an edit
        await reply.finish("乔峰带阿朱", markup="B")

    asyncio.run(go())
    assert bot.messages == {1: ("乔峰带阿朱", "B")}


def test_a_part_abandoned_at_shutdown_is_not_saved_and_the_chat_is_told(tiny_model_dir, tmp_path):
    from bot import texts
    from bot.engine import StoryEngine
    from bot.scheduler import Scheduler
    from bot.store import Store
    from model import load

    model = load(tiny_model_dir)

    async def go():
        store = await Store.open(tmp_path / "db")
        scheduler = Scheduler(model)
        scheduler.start()

        class StoppingBot(RecordingBot):
            """Shuts the scheduler down as the part's first text is sent, as SIGTERM would."""
            async def send_message(self, chat_id, text, reply_markup=None, **where):
                if not self.messages:
                    await scheduler.stop()
                return await super().send_message(chat_id, text, reply_markup)

        engine = StoryEngine(store, scheduler)
        await store.set_length(1, 2000)
        bot = StoppingBot()
        await stream(engine.write(1, "乔峰"), telegram_send.TelegramOutput(bot, 1))
        story = await store.story(1)
        await store.close()
        return bot, story
    bot, story = asyncio.run(go())
    texts_sent = [t for t, _ in bot.messages.values()]
    assert texts_sent[-1] == texts.STOPPED
    assert story is None  # a new story is stored only with its whole first part: the half part left nothing
