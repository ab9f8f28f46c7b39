"""Faults and abuse, end to end through the fake Bot API server: nothing lost, nothing sent twice."""

import re
import resource
import signal
import socket
import sqlite3
import time

import pytest

from bot import texts
from bot.schema import MIGRATIONS
from tests.bot.fake_telegram import TOKEN, FakeTelegram
from tests.bot.harness import BotProcess, a_part_of, finished_part, reply_after


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigkill_mid_generation_loses_nothing_written_before(fake, start_bot, tmp_path):
    bot = start_bot(fake, log="1.log")
    reply_after(fake, 1, "/temp 1.3")
    reply_after(fake, 1, "/len 100")
    part = finished_part(fake, 1, "/write 萧峰")
    reply_after(fake, 1, "/len 2000")
    fake.fail("editMessageText", "hang", 3)  # keep the next part in flight
    fake.command(1, "/continue")
    fake.wait_for(lambda: len(fake.chat(1)) >= 5, 30, "the next part's first text")
    bot.stop(signal.SIGKILL)
    fake.wait_for(lambda: fake.hanging == 0, 30, "the killed bot's hung request answered (as Telegram would)")
    with sqlite3.connect(tmp_path / "db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    start_bot(fake, log="2.log")
    assert reply_after(fake, 1, "/temp").text == texts.TEMP_SHOWN.format(value=1.3)
    reply_after(fake, 1, "/len 60")
    more = finished_part(fake, 1, "/continue")
    assert a_part_of(more.text, 60)
    doc = reply_after(fake, 1, "/story")
    assert doc.document.decode().startswith(part.text)


def test_a_second_bot_on_the_same_database_is_refused_in_one_line(fake, start_bot, tiny_model_dir, tmp_path):
    from tests.bot.harness import BotProcess

    start_bot(fake, db="shared.db")
    second = BotProcess(fake, tiny_model_dir, tmp_path / "shared.db", tmp_path / "second.log").spawn()
    assert second.proc.wait(timeout=90) == 1
    errors = [line for line in second.log().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "another bot process is using this database" in errors[0]
    assert "Traceback" not in second.log()
    assert reply_after(fake, 23, "/help").text == texts.HELP  # the first goes on


def test_sigterm_is_bounded_while_a_part_waits_out_a_429(fake, start_bot):
    bot = start_bot(fake)
    reply_after(fake, 24, "/len 2000")
    fake.fail("editMessageText", "429", 60)  # the part's first edit is told to wait a minute
    fake.command(24, "/write 段誉")
    fake.wait_for(lambda: any(m == "editMessageText" for _, m, _p in fake.calls), 30, "the edit told to wait")
    t0 = time.monotonic()
    assert bot.stop(signal.SIGTERM, timeout=90) == 0
    assert time.monotonic() - t0 < 10, "stopped within SHUTDOWN_GRACE (5 s) and a little"
    assert "Traceback" not in bot.log()


def test_restart_keeps_settings_and_story_and_sigterm_is_clean(fake, start_bot, tmp_path):
    db = tmp_path / "db"
    first = start_bot(fake, log="1.log")
    reply_after(fake, 20, "/temp 0.5")
    reply_after(fake, 20, "/len 50")
    part = finished_part(fake, 20, "/write 王语嫣")
    t0 = time.monotonic()
    assert first.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 10, "SIGTERM stops within a few seconds"
    assert oct(db.stat().st_mode & 0o777) == "0o600", "database readable by its owner only"
    second = start_bot(fake, log="2.log", ALLOWED_USER_IDS="20,21")
    assert reply_after(fake, 20, "/temp").text == texts.TEMP_SHOWN.format(value=0.5)
    more = finished_part(fake, 20, "/continue")
    assert a_part_of(more.text, 50)
    doc = reply_after(fake, 20, "/story")
    assert doc.document is not None, doc.text
    assert doc.document.decode() == part.text + more.text
    assert reply_after(fake, 30, "/write 不让写").text == texts.NOT_ALLOWED
    second.stop()
    for log in (first.log(), second.log()):
        assert TOKEN not in log
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)


def test_a_full_disk_loses_nothing_and_the_bot_keeps_answering(fake, start_bot, tmp_path):
    bot = start_bot(fake, log_through_pipe=True)
    reply_after(fake, 9, "/temp 0.7")
    reply_after(fake, 9, "/len 50")
    first = finished_part(fake, 9, "/write 段誉")
    # From here no file of the bot's may grow past one byte (RLIMIT_FSIZE, set on the running
    # process): every database write fails as on a full disk. Its log goes through a pipe.
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.prlimit(bot.proc.pid, resource.RLIMIT_FSIZE, (1, hard))
    assert reply_after(fake, 9, "/temp 1.2").text == texts.STORAGE_FAILED
    shown = reply_after(fake, 9, "/temp").text
    assert shown == texts.TEMP_SHOWN.format(value=0.7), "reads go on; the setting is as it was"
    for command in ("/write 乔峰", "/continue"):  # generated and shown, then its save fails: the user is told
        before = len(fake.chat(9))
        fake.command(9, command)
        fake.wait_for(lambda before=before: texts.STORAGE_FAILED in fake.texts(9)[before:], 60,
                      "the apology for the lost part")
        assert len(fake.chat(9)) == before + 2, "the part as far as it went, then the apology"
    assert reply_after(fake, 10, "/help").text == texts.HELP, "other chats are answered"

    resource.prlimit(bot.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))  # space again
    assert reply_after(fake, 9, "/temp 0.9").text == texts.TEMP_SET.format(value=0.9)
    more = finished_part(fake, 9, "/continue")
    doc = reply_after(fake, 9, "/story")
    assert doc.document.decode() == first.text + more.text, "the story goes on from its last saved part"
    bot.stop()
    with sqlite3.connect(tmp_path / "db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # SQLite names the cause: "database or disk is full" (ENOSPC) or "disk I/O error" (EFBIG, here).
    assert len(re.findall(r"ERROR .*database write failed.*(disk is full|disk I/O error)", bot.log())) == 3
    assert "Traceback" not in bot.log()


def test_api_unreachable_at_start_and_gone_for_a_while(tiny_model_dir, tmp_path):
    port = free_port()
    down = FakeTelegram(port=port)
    down.server.server_close()  # nothing listens on the port yet
    bot = BotProcess(down, tiny_model_dir, tmp_path / "db", tmp_path / "bot.log").spawn()
    proc = bot.proc
    try:
        deadline = time.monotonic() + 60
        while (tmp_path / "bot.log").read_text(errors="replace").count("unreachable") < 3:
            assert proc.poll() is None, "the bot gave up while the API was unreachable"
            assert time.monotonic() < deadline, "no retry lines in the log"
            time.sleep(0.5)
        up = FakeTelegram(port=port).start()
        up.command(5, "/temp")  # waiting for it when it connects
        up.wait_for(lambda: up.chat(5), 90, "an answer once the API is back")
        assert up.texts(5) == [texts.TEMP_SHOWN.format(value=0.8)]
        log = lambda: (tmp_path / "bot.log").read_text(errors="replace")  # noqa: E731
        seen = log().count("unreachable")
        up.stop()  # the API goes away while the bot runs
        up.wait_for(lambda: log().count("unreachable") > seen, 60, "a retry while the API is gone")
        assert proc.poll() is None
        again = FakeTelegram(port=port).start()
        again.next_update_id = up.next_update_id  # Telegram's update ids go on increasing
        again.command(6, "/len")
        again.wait_for(lambda: again.chat(6), 90, "an answer after the API came back")
        again.stop()
    finally:
        bot.stop()
    text = (tmp_path / "bot.log").read_text(errors="replace")
    assert TOKEN not in text
    retries = [line for line in text.splitlines() if "unreachable" in line]
    assert len(retries) >= 4, "retries are logged, at start-up and while polling"
    assert len(retries) < 60, "with backoff, not in a tight loop"
    assert "Traceback" not in text


def test_timeouts_on_edits_are_retried_and_the_final_text_arrives_once(fake, start_bot):
    bot = start_bot(fake, TELEGRAM_TIMEOUT=2)
    reply_after(fake, 3, "/len 600")
    fake.fail("editMessageText", "hang", 4)  # longer than the timeout: the edit times out
    fake.fail("sendMessage", "429", 1)
    part = finished_part(fake, 3, "/write 段正淳")
    assert a_part_of(part.text[len("段正淳"):], 600)
    assert [m.text.startswith("段正淳") for m in fake.chat(3)].count(True) == 1
    assert "timed out" in bot.log()


def test_flood_from_one_user_is_bounded_and_others_are_not_slowed(fake, start_bot):
    start_bot(fake)
    reply_after(fake, 7, "/len 2000")
    fake.fail("sendMessage", "hang", 10, chat_id=7)  # chat 7's first part is held up (a slow chat)
    for i in range(50):
        fake.command(7, f"/write 第{i}次")
        time.sleep(0.1)
    other = reply_after(fake, 8, "/temp")
    first = fake.wait_for(lambda: next((m for m in fake.chat(7) if m.reply_markup), None), 60, "chat 7's first part")
    assert other.created < first.created, "another chat is answered while chat 7's flood and part are under way"
    reply_after(fake, 8, "/len")  # updates are dispatched in order: every flood command came before this one
    messages = fake.texts(7)
    parts = [m for m in fake.chat(7) if m.reply_markup]  # one at a time: tests/bot/test_engine.py
    assert len(parts) <= 15, "the hourly character limit (30,000 = 15 × 2,000) holds"
    notices = [t for t in messages if t in (texts.BUSY_CHAT, texts.TOO_FAST, texts.TOO_MUCH)]
    assert len(notices) <= 4, f"refusals are coalesced, not one per message: {len(notices)}"


def test_character_and_request_limits(fake, start_bot):
    start_bot(fake, CHARS_USER_PER_HOUR=250, RATE_USER_PER_MIN=8)
    reply_after(fake, 9, "/len 200")
    finished_part(fake, 9, "/write 阿紫")
    assert reply_after(fake, 9, "/continue").text == texts.TOO_MUCH
    doc = reply_after(fake, 9, "/story")  # the refused /continue changed nothing
    assert doc.document is not None
    for _ in range(6):
        fake.command(9, "/temp")
    fake.wait_for(lambda: texts.TOO_FAST in fake.texts(9), 30, "the request limit")
    assert reply_after(fake, 10, "/temp").text == texts.TEMP_SHOWN.format(value=0.8)  # other users unaffected


def test_buttons_respect_allowed_users(fake, start_bot):
    start_bot(fake, ALLOWED_USER_IDS="11")
    reply_after(fake, -11, "/len 50", user_id=11, chat_type="group")
    part = finished_part(fake, -11, "/write 木婉清", user_id=11, chat_type="group")
    n = len(fake.chat(-11))
    fake.press(-11, part.message_id, part.reply_markup["inline_keyboard"][0][0]["callback_data"], user_id=99)
    fake.wait_for(lambda: any(c[1] == "answerCallbackQuery" and c[2].get("text") == texts.NOT_ALLOWED
                              for c in fake.calls), 30)
    # The allowed user writes next: had the press started a part, this one would be refused (one at a time).
    own = finished_part(fake, -11, "/write 钟灵", user_id=11, chat_type="group")
    assert [m.message_id for m in fake.chat(-11)[n:]] == [own.message_id], "no generation for a stranger's press"


def test_a_failing_handler_apologises_and_the_bot_goes_on(fake, start_bot):
    bot = start_bot(fake)
    reply_after(fake, 12, "/len 50")
    finished_part(fake, 12, "/write 钟灵")
    fake.fail("sendDocument", "error", "file is too big")
    assert reply_after(fake, 12, "/story").text == texts.APOLOGY
    assert reply_after(fake, 12, "/temp").text == texts.TEMP_SHOWN.format(value=0.8)
    log = bot.log()
    assert "handler failed" in log and TOKEN not in log


@pytest.mark.slow
def test_soak_200_chats_5_commands(fake, start_bot):
    bot = start_bot(fake, LOG_LEVEL="INFO", RATE_GLOBAL_PER_MIN=100000, MAX_JOBS=256)
    chats = list(range(1000, 1200))
    # Warm up, then take the baseline memory.
    for c in chats[:20]:
        fake.command(c, "/len 50")
    fake.wait_for(lambda: all(fake.chat(c) for c in chats[:20]), 60)
    start_rss = bot.rss_mb()
    script = ["/len 50", "/temp abc", "/write 乔峰", "/temp 0.9", "/len x"]
    expected = {0: texts.LEN_SET.format(value=50), 1: texts.TEMP_INVALID.format(raw="abc"),
                3: texts.TEMP_SET.format(value=0.9), 4: texts.LEN_INVALID.format(raw="x")}
    for step, command in enumerate(script):
        for c in chats:
            fake.command(c, command)
        if command.startswith("/write"):
            fake.wait_for(lambda: all(any(m.reply_markup for m in fake.chat(c)) for c in chats), 240,
                          "every story part")
        else:
            fake.wait_for(lambda s=step: all(expected[s] in fake.texts(c) for c in chats), 120,
                          f"every reply to {command}")
    for c in chats:
        parts = [m for m in fake.chat(c) if m.reply_markup]
        assert len(parts) == 1 and parts[0].text.startswith("乔峰") and a_part_of(parts[0].text[2:], 50)
    end_rss = bot.rss_mb()
    log = bot.log()
    assert " ERROR " not in log and "Traceback" not in log
    assert end_rss < start_rss * 1.25 + 50, f"memory grew from {start_rss:.0f} MB to {end_rss:.0f} MB"


def test_refused_token_is_one_line(tiny_model_dir, tmp_path):
    from tests.conftest import run_python

    with FakeTelegram(token="987654321:AAAnotherTokenThatTheServerKnows_xyzxyz") as other:
        r = run_python("-m", "bot", "--env-file", "/nonexistent", timeout=90, env={
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_BASE_URL": other.base_url, "MODEL_DIR": str(tiny_model_dir),
            "DATABASE_PATH": str(tmp_path / "db")})
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and "refused TELEGRAM_BOT_TOKEN (401)" in errors[0]
    assert "Traceback" not in r.stderr and TOKEN not in r.stderr


def test_a_token_revoked_during_start_up_is_one_line_and_never_printed(tiny_model_dir, tmp_path):
    from tests.bot.harness import BotProcess

    with FakeTelegram() as fake:
        # The start-up check's getMe passes; PTB's own (in initialize) finds the token revoked.
        fake.faults["getMe"] = [("ok", 0), ("revoked", 0)]
        bot = BotProcess(fake, tiny_model_dir, tmp_path / "db", tmp_path / "log").spawn()
        code = bot.proc.wait(timeout=90)
    log = bot.log()
    assert code == 1, log[-2000:]
    assert [line for line in log.splitlines() if line.startswith("error:")][0].endswith(
        "refused TELEGRAM_BOT_TOKEN; check the token from @BotFather")
    assert "Traceback" not in log and TOKEN not in log


@pytest.mark.parametrize("damage,message", [
    ("variables", "missing variables/variables.index"),
    ("data", "missing variables/variables.data-*"),
    ("format", "model format 99"),
])
def test_partial_or_incompatible_model_is_named(damage, message, tiny_model_dir, tmp_path):
    import json
    import shutil

    from tests.conftest import run_python

    broken = tmp_path / "model"
    shutil.copytree(tiny_model_dir, broken)
    if damage == "variables":
        shutil.rmtree(broken / "variables")
    elif damage == "data":
        for f in (broken / "variables").glob("variables.data-*"):
            f.unlink()
    else:
        card = json.loads((broken / "model.json").read_text())
        (broken / "model.json").write_text(json.dumps({**card, "format": 99}))
    r = run_python("-m", "bot", "--env-file", "/nonexistent", timeout=60, env={
        "TELEGRAM_BOT_TOKEN": TOKEN, "MODEL_DIR": str(broken), "DATABASE_PATH": str(tmp_path / "db")})
    assert r.returncode == 1 and message in r.stderr and str(broken) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_sends_and_edits_keep_to_the_flood_limit_for_all_chats_together(fake, start_bot):
    start_bot(fake, TELEGRAM_MESSAGES_PER_SECOND="3")
    chats = range(300, 308)
    for c in chats:
        reply_after(fake, c, "/len 100")
    t0 = time.monotonic()
    for c in chats:
        fake.command(c, f"/write 第{c}回 乔峰")
    fake.wait_for(lambda: all(any(m.reply_markup for m in fake.chat(c)) for c in chats), 60, "8 finished parts")
    times = sorted(t for t, method, p in fake.calls if t >= t0 and "chat_id" in p)
    assert len(times) >= 16  # each part: its first text and its final edit, at least
    # A leaky bucket of 3 a second lets at most 3 through at once and 3 more each second after.
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 7, busiest
    assert times[-1] - times[0] >= (len(times) - 4) / 3 - 0.5


@pytest.mark.slow
def test_a_long_part_grows_by_edits_a_second_apart(fake, start_bot):
    # The shipped model on the exact float32 runtime writes 2,000 characters over several seconds
    # (the tiny model is done in a fraction of one, with no time to stream).
    from model import DEFAULT_MODEL_DIR

    start_bot(fake, MODEL_DIR=str(DEFAULT_MODEL_DIR), RUNTIME="float32")
    reply_after(fake, 33, "/len 2000")
    part = finished_part(fake, 33, "/write 段誉")
    assert a_part_of(part.text[2:], 2000)
    times = [t for t, _ in part.edits]
    assert len(times) >= 2, "the text grew on screen by edits, not only at the end"
    assert all(b - a >= 0.95 for a, b in zip(times, times[1:])), "at most one edit a second"
    shown = [len(text) for _, text in part.edits]
    assert shown == sorted(shown) and shown[0] < shown[-1], "each edit shows more of the part"


def test_anonymous_admins_of_different_groups_have_limits_of_their_own(fake, start_bot):
    start_bot(fake, RATE_USER_PER_MIN=4)
    for _ in range(6):  # one group's anonymous admins flood the bot
        fake.command(-901, "/temp", chat_type="supergroup", anonymous=True)
    fake.wait_for(lambda: texts.TOO_FAST in fake.texts(-901), 30, "the flooding group's limit")
    # Another group's anonymous admin comes from the same account, but is counted on its own.
    other = reply_after(fake, -902, "/temp", chat_type="supergroup", anonymous=True)
    assert other.text == texts.TEMP_SHOWN.format(value=0.8)


def test_a_quiet_refusal_still_stops_the_buttons_spinner(fake, start_bot):
    start_bot(fake, ALLOWED_USER_IDS="12")
    reply_after(fake, -12, "/len 50", user_id=12, chat_type="group")
    part = finished_part(fake, -12, "/write 木婉清", user_id=12, chat_type="group")
    data = part.reply_markup["inline_keyboard"][0][0]["callback_data"]
    for _ in range(2):  # the second refusal falls in the quiet window: no text, but an answer all the same
        fake.press(-12, part.message_id, data, user_id=99)
    fake.wait_for(lambda: sum(1 for _, m, _p in fake.calls if m == "answerCallbackQuery") >= 2, 30,
                  "an answer to each press")
    # In press order (the two answers travel at once, so they may reach the server in either order).
    answers = sorted((p for _, m, p in fake.calls if m == "answerCallbackQuery"),
                     key=lambda p: int(p["callback_query_id"]))
    assert [a.get("text") for a in answers] == [texts.NOT_ALLOWED, None]


def test_debug_logs_keep_peoples_messages_and_stories_out(fake, start_bot):
    bot = start_bot(fake, LOG_LEVEL="DEBUG")
    reply_after(fake, 13, "/len 50")
    part = finished_part(fake, 13, "/write 秘密的开头")
    log = bot.log()
    assert " DEBUG " in log  # the bot's own debugging lines are there
    assert "秘密的开头" not in log and part.text[5:30] not in log


@pytest.mark.parametrize("method", ["sendMessage", "editMessageText"])
def test_a_part_that_cannot_be_shown_is_still_written_and_saved(fake, start_bot, method):
    bot = start_bot(fake)
    reply_after(fake, 14, "/len 300")
    # The first text cannot be sent, or the message is gone when it is edited (deleted by someone).
    fake.fail(method, "error", "message to edit not found" if method == "editMessageText" else "chat not found")
    fake.command(14, "/write 萧峰")
    fake.wait_for(lambda: "could not show a part" in bot.log(), 30, "the failure noticed")
    if method == "sendMessage":  # the first text failed: the whole part is sent afresh at the end, buttons too
        fake.wait_for(lambda: any(m.reply_markup for m in fake.chat(14)), 30, "the part sent afresh")
    # (A failed edit of the tiny model's part is its final one, made after the part was saved.)
    story = reply_after(fake, 14, "/story").document.decode("utf-8")
    assert story.startswith("萧峰") and a_part_of(story[2:], 300)  # written in full and saved
    assert " ERROR " not in bot.log()


def test_a_429_pauses_only_the_chat_it_was_for(fake, start_bot):
    bot = start_bot(fake)
    reply_after(fake, 15, "/len 100")
    fake.fail("sendMessage", "429", 6, chat_id=15)  # chat 15's first text is told to wait six seconds
    fake.command(15, "/write 王语嫣")
    fake.wait_for(lambda: "(429)" in bot.log(), 30, "the 429 noticed")
    t0 = time.monotonic()
    other = reply_after(fake, 16, "/temp")
    assert other.text == texts.TEMP_SHOWN.format(value=0.8)
    part = fake.wait_for(
        lambda: next((m for m in fake.chat(15) if m.reply_markup), None), 60, "chat 15's part after its wait")
    assert other.created < part.created, "another chat is answered while chat 15 waits"
    assert part.created - t0 >= 4.0 and part.text.startswith("王语嫣")  # sent once its pause was over
