"""End to end: `python -m bot` in a subprocess, talking real HTTP to the fake Bot API server."""

import sqlite3

import pytest

from bot import texts
from tests.bot.fake_telegram import TOKEN, FakeTelegram
from tests.bot.harness import BotProcess, a_part_of, finished_part, reply_after
from tests.conftest import run_python


@pytest.fixture(scope="module")
def fake():
    """One server for this module's shared bot (each test uses chats of its own)."""
    with FakeTelegram() as server:
        yield server


@pytest.fixture(scope="module")
def bot(fake, tiny_model_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("bot")
    proc = BotProcess(fake, tiny_model_dir, d / "bot.sqlite3", d / "bot.log", RATE_USER_PER_MIN=1000).start()
    yield proc
    proc.stop()
    assert TOKEN not in proc.log(), "the token reached the log"


def test_help_and_commands_registered(fake, bot):
    assert reply_after(fake, 1, "/start").text == texts.HELP
    assert {c["command"] for c in fake.commands} >= {"write", "continue", "temp", "len", "book", "story", "reset",
                                                     "help"}
    assert reply_after(fake, 1, "/book 天龙八部").text == texts.NO_BOOKS  # the tiny model has no novels
    assert reply_after(fake, 1, "/foo").text == texts.UNKNOWN_COMMAND
    assert reply_after(fake, 1, "/foo@JinYongBot bar").text == texts.UNKNOWN_COMMAND
    # Another bot's command gets no answer: the next reply in the chat is the one to /help.
    fake.command(1, "/foo@OtherBot")
    assert reply_after(fake, 1, "/help").text == texts.HELP


def test_write_continue_and_story(fake, bot):
    assert reply_after(fake, 2, "/len 60").text == texts.LEN_SET.format(value=60)
    first = finished_part(fake, 2, "/write 乔峰带阿朱 *bold* <b>x</b>")
    assert first.text.startswith("乔峰带阿朱 *bold* <b>x</b>")
    assert a_part_of(first.text[len("乔峰带阿朱 *bold* <b>x</b>"):], 60)
    buttons = [b["text"] for b in first.reply_markup["inline_keyboard"][0]]
    assert buttons == [texts.BUTTON_CONTINUE, texts.BUTTON_REWRITE]
    second = finished_part(fake, 2, "/continue")
    assert second.message_id != first.message_id and a_part_of(second.text, 60)
    doc = reply_after(fake, 2, "/story")
    assert doc.document.decode("utf-8") == first.text + second.text


@pytest.mark.parametrize("arg", ["abc", "nan", "inf", "0", "-1", "100", "1e309"])
def test_bad_temperature_changes_nothing(fake, bot, arg):
    reply_after(fake, 4, "/temp 0.7")
    assert reply_after(fake, 4, f"/temp {arg}").text == texts.TEMP_INVALID.format(raw=arg)
    assert reply_after(fake, 4, "/temp").text == texts.TEMP_SHOWN.format(value=0.7)


def test_bad_length_and_usage_messages(fake, bot):
    assert reply_after(fake, 5, "/len x").text == texts.LEN_INVALID.format(raw="x")
    assert reply_after(fake, 5, "/len 10").text == texts.LEN_INVALID.format(raw="10")
    assert reply_after(fake, 5, "/len").text == texts.LEN_SHOWN.format(value=300)
    assert reply_after(fake, 5, "/write").text == texts.WRITE_USAGE
    assert reply_after(fake, 5, "/continue").text == texts.NO_STORY
    assert reply_after(fake, 5, "/story").text == texts.NO_STORY


def test_unseen_characters_and_long_prompts_still_write(fake, bot):
    reply_after(fake, 6, "/len 50")
    part = finished_part(fake, 6, "/write 🐉 Hello 龘")
    assert part.text.startswith("🐉 Hello 龘") and "[UNK]" not in part.text
    long_prompt = "段" * 200 + "乔" * 500  # the last 500 characters are kept
    fake.command(6, f"/write {long_prompt}")
    cut = texts.PROMPT_CUT.format(limit=500)
    notice = fake.wait_for(lambda: next((m for m in fake.chat(6) if m.text == cut), None))
    part = fake.wait_for(lambda: next((m for m in fake.chat(6) if m.message_id > notice.message_id
                                       and m.reply_markup), None))
    # The part is the kept prompt plus /len 50 generated characters; what the model
    # writes is random, so the check rests on lengths, not on the generated text.
    assert part.text.startswith("乔" * 500) and a_part_of(part.text[500:], 50)


def test_several_chats_at_once(fake, bot):
    chats = [101, 102, 103, 104]
    for c in chats:
        fake.command(c, "/len 200")
    for c in chats:
        fake.wait_for(lambda c=c: fake.chat(c))
    for c in chats:
        fake.command(c, f"/write 第{c}回")
    for c in chats:
        part = fake.wait_for(lambda c=c: next((m for m in fake.chat(c) if m.reply_markup), None), 60)
        assert part.text.startswith(f"第{c}回") and a_part_of(part.text[len(f"第{c}回"):], 200)


def test_second_request_while_writing_is_told_to_wait(fake, bot):
    reply_after(fake, 7, "/len 2000")
    fake.command(7, "/write 虚竹")
    fake.wait_for(lambda: fake.chat(7)[1:], 30, "the first text")
    busy = reply_after(fake, 7, "/continue")
    assert busy.text == texts.BUSY_CHAT
    fake.wait_for(lambda: any(m.reply_markup for m in fake.chat(7)), 60)


def test_buttons_continue_rewrite_and_stale(fake, bot):
    reply_after(fake, 8, "/len 50")
    first = finished_part(fake, 8, "/write 郭靖")
    fake.press(8, first.message_id, first.reply_markup["inline_keyboard"][0][0]["callback_data"])
    second = fake.wait_for(lambda: next((m for m in fake.chat(8) if m.reply_markup and
                                         m.message_id > first.message_id), None))
    assert a_part_of(second.text, 50)
    rewrite = second.reply_markup["inline_keyboard"][0][1]["callback_data"]
    fake.press(8, second.message_id, rewrite)
    third = fake.wait_for(lambda: next((m for m in fake.chat(8) if m.reply_markup and
                                        m.message_id > second.message_id), None))
    assert a_part_of(third.text, 50)
    doc = reply_after(fake, 8, "/story")
    assert doc.document.decode() == first.text + third.text  # the rewritten part replaced the old one
    # 重写 on an older part, then any button after /reset: refused, nothing generated.
    fake.press(8, first.message_id, first.reply_markup["inline_keyboard"][0][1]["callback_data"])
    assert fake.wait_for(lambda: fake.chat(8)[-1].text == texts.OLD_PART)
    reply_after(fake, 8, "/reset")
    fake.press(8, third.message_id, third.reply_markup["inline_keyboard"][0][0]["callback_data"])
    assert fake.wait_for(lambda: fake.chat(8)[-1].text == texts.STALE_BUTTON)


def test_group_commands_addressed_to_us_only(fake, bot):
    reply_after(fake, -500, "/len@JinYongBot 50", chat_type="supergroup", user_id=77)
    part = finished_part(fake, -500, "/write@JinYongBot 黄蓉", chat_type="supergroup", user_id=77)
    assert part.text.startswith("黄蓉")
    assert reply_after(fake, -500, "/temp@JinYongBot", chat_type="supergroup", user_id=77).text == \
        texts.TEMP_SHOWN.format(value=0.8)
    n = len(fake.chat(-500))
    fake.command(-500, "/write@OtherBot 别理我", chat_type="supergroup", user_id=77)
    # Ours comes next: had the other bot's /write been taken, this one would be refused (one part at a time).
    own = finished_part(fake, -500, "/write@JinYongBot 郭靖", chat_type="supergroup", user_id=77)
    assert [m.message_id for m in fake.chat(-500)[n:]] == [own.message_id]
    assert own.text.startswith("郭靖")


def test_edited_command_does_not_run_again(fake, bot):
    reply_after(fake, 9, "/temp 1.5")
    fake.command(9, "/temp 0.3", edited=True)
    # Updates are dispatched in order, and one chat's settings are read and written in order.
    assert reply_after(fake, 9, "/temp").text == texts.TEMP_SHOWN.format(value=1.5)


def test_429_while_streaming_is_obeyed_and_final_text_sent_once(fake, bot):
    reply_after(fake, 10, "/len 300")
    fake.fail("editMessageText", "429", 2)
    part = finished_part(fake, 10, "/write 阿朱")
    assert a_part_of(part.text[2:], 300)
    assert sum(1 for m in fake.chat(10) if m.text.startswith("阿朱")) == 1


@pytest.mark.parametrize("env,message", [
    ({"TELEGRAM_BOT_TOKEN": ""}, "TELEGRAM_BOT_TOKEN is not set"),
    ({"TELEGRAM_BOT_TOKEN": "not-a-token"}, "TELEGRAM_BOT_TOKEN is malformed"),
    ({"MODEL_DIR": "/nonexistent/model"}, "/nonexistent/model: no such model directory"),
    ({"DATABASE_PATH": "/proc/forbidden/bot.sqlite3"}, "cannot open database"),
])
def test_bad_startup_is_one_line_and_nonzero(env, message, tiny_model_dir, tmp_path):
    base = {"TELEGRAM_BOT_TOKEN": TOKEN, "MODEL_DIR": str(tiny_model_dir),
            "DATABASE_PATH": str(tmp_path / "db.sqlite3"), "TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot"}
    r = run_python("-m", "bot", "--env-file", "/nonexistent", env={**base, **env}, timeout=60)
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr and TOKEN not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_newer_database_is_refused(tiny_model_dir, tmp_path):
    db = tmp_path / "db.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'future')")
    r = run_python("-m", "bot", "--env-file", "/nonexistent", env={
        "TELEGRAM_BOT_TOKEN": TOKEN, "MODEL_DIR": str(tiny_model_dir), "DATABASE_PATH": str(db)}, timeout=60)
    assert r.returncode == 1 and "schema version 99 is newer than this bot" in r.stderr


def test_a_group_upgraded_to_a_supergroup_keeps_its_story_and_settings(fake, bot):
    group, supergroup = -400, -1000000000400
    assert reply_after(fake, group, "/temp 0.5", chat_type="group").text == texts.TEMP_SET.format(value=0.5)
    assert reply_after(fake, group, "/len 60", chat_type="group").text == texts.LEN_SET.format(value=60)
    first = finished_part(fake, group, "/write 虚竹", chat_type="group")
    fake.migrate(group, supergroup)
    fake.wait_for(lambda: "became supergroup" in bot.log(), 30, "the move")  # updates are handled concurrently
    assert reply_after(fake, supergroup, "/temp", chat_type="supergroup").text == texts.TEMP_SHOWN.format(value=0.5)
    more = finished_part(fake, supergroup, "/continue", chat_type="supergroup")
    assert a_part_of(more.text, 60)
    doc = reply_after(fake, supergroup, "/story", chat_type="supergroup")
    assert doc.document.decode("utf-8") == first.text + more.text
