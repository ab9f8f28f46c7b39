"""Under strain nothing stalls or is lost: a hung Bot API, dropped connections, deleted commands,
forum topics, presses too old to answer, webhook abuse, two bots at once (end to end, the fake Bot API)."""

import socket
import time

from bot import texts
from tests.bot.harness import BotProcess, a_part_of, finished_part, reply_after


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_300_parts_whose_sends_hang_stall_no_other_chat(fake, start_bot):
    start_bot(fake)
    chats = range(1000, 1300)
    for c in chats:  # every part's first text hangs for a minute (a Bot API that stopped answering)
        fake.fail("sendMessage", "hang", 60, chat_id=c)
    for c in chats:
        fake.command(c, "/write 乔峰")
    fake.wait_for(lambda: fake.hanging >= 250, 60, "the parts' first sends hanging")
    t0 = time.monotonic()
    assert reply_after(fake, 5, "/help").text == texts.HELP
    assert time.monotonic() - t0 < 2.0, "another chat is answered within 2 s"
    part = finished_part(fake, 6, "/write 段誉")  # and another chat's part is written and shown
    assert part.text.startswith("段誉")
    # Presses on a chat whose part is in flight are answered (a notice on the button) and start nothing.
    fake.fail("sendMessage", "hang", 60, chat_id=6)
    for _ in range(11):  # pressed 11 times at once (within the user's 20 requests a minute)
        fake.press(6, part.message_id, part.reply_markup["inline_keyboard"][0][0]["callback_data"])
    fake.wait_for(lambda: sum(1 for _, m, _p in fake.calls if m == "answerCallbackQuery") >= 11, 30,
                  "every press answered while the part hangs")
    notices = sorted(str(p.get("text")) for _, m, p in fake.calls if m == "answerCallbackQuery")
    assert notices == sorted([texts.BUSY_CHAT] * 10 + ["None"]), "one part started; the others told it is writing"
    assert len([m for m in fake.chat(6) if m.text == texts.BUSY_CHAT]) == 0, "no message per press"


def test_a_dropped_connection_mid_part_keeps_writing_and_the_part_arrives_whole(fake, start_bot):
    bot = start_bot(fake)
    reply_after(fake, 31, "/len 300")
    fake.fail("sendMessage", "drop", 0, chat_id=31)  # the part's first text: the connection closes unanswered
    fake.command(31, "/write 萧峰")
    part = fake.wait_for(lambda: next((m for m in fake.chat(31) if m.reply_markup), None), 60, "the part")
    assert part.text.startswith("萧峰") and a_part_of(part.text[2:], 300)
    story = reply_after(fake, 31, "/story").document.decode("utf-8")
    assert story == part.text  # written in full and saved
    assert texts.APOLOGY not in fake.texts(31)
    log = bot.log()
    line = next(x for x in log.splitlines() if "could not show a part" in x)
    assert "RemoteProtocolError" in line, "the log names the real cause"
    assert "unreachable while polling" not in log and "Traceback" not in log


def test_replies_and_parts_arrive_when_the_command_was_deleted(fake, start_bot):
    start_bot(fake)
    group = dict(chat_type="group", user_id=41)
    fake.command(-41, "/len 60", deleted=True, **group)  # a clean-commands bot deletes every command at once
    fake.wait_for(lambda: texts.LEN_SET.format(value=60) in fake.texts(-41), 30, "the reply to a deleted /len")
    part = finished_part(fake, -41, "/write 乔峰", deleted=True, **group)
    assert a_part_of(part.text[2:], 60)
    fake.command(-41, "/temp 9", deleted=True, **group)  # a refused setting's message too
    fake.wait_for(lambda: any(t.startswith("温度必须是") for t in fake.texts(-41)), 30, "the refusal")
    assert texts.APOLOGY not in fake.texts(-41)


def test_every_message_of_a_part_goes_to_the_topic_it_was_asked_in(fake, start_bot):
    start_bot(fake)
    topic = dict(chat_type="supergroup", user_id=42, thread_id=42)
    fake.command(-1042, "/len 60", **topic)
    fake.wait_for(lambda: fake.chat(-1042), 30, "the reply")
    part = finished_part(fake, -1042, "/write 段誉", **topic)
    fake.press(-1042, part.message_id, part.reply_markup["inline_keyboard"][0][0]["callback_data"], user_id=42)
    fake.wait_for(lambda: sum(1 for m in fake.chat(-1042) if m.reply_markup) >= 2, 60, "the next part")
    story = reply_after(fake, -1042, "/story", **topic)
    assert story.document.decode("utf-8").startswith(part.text)
    assert [m.thread_id for m in fake.chat(-1042)] == [42] * len(fake.chat(-1042)), "nothing went to General"


def test_a_press_too_old_to_answer_is_acted_on_all_the_same(fake, start_bot):
    bot = start_bot(fake)
    reply_after(fake, 43, "/len 50")
    part = finished_part(fake, 43, "/write 郭靖")
    fake.fail("answerCallbackQuery", "error", "query is too old and response timeout expired or query id is invalid")
    fake.press(43, part.message_id, part.reply_markup["inline_keyboard"][0][0]["callback_data"])
    more = fake.wait_for(lambda: next((m for m in fake.chat(43) if m.reply_markup and
                                       m.message_id > part.message_id), None), 60, "the part the press asked for")
    assert a_part_of(more.text, 50) and texts.APOLOGY not in fake.texts(43)
    assert "query is too old" in bot.log().lower()


def raw_post(port: int, path: str, headers: dict, body: bytes = b"", timeout: float = 5.0) -> str:
    """Send an HTTP request's head (and `body`, maybe less than its Content-Length says); the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode() + body)
        return s.recv(4096).decode(errors="replace").split("\r\n", 1)[0]


def test_webhook_refuses_oversized_or_unauthenticated_posts_before_reading_them(fake, start_bot):
    port = free_port()
    bot = start_bot(fake, WEBHOOK_URL=f"http://127.0.0.1:{port}/hook", WEBHOOK_LISTEN=f"127.0.0.1:{port}",
                    WEBHOOK_SECRET="right-secret")
    rss = bot.rss_mb()
    # 95 MB announced, none of it sent: the answer comes from the headers alone.
    big = {"Content-Type": "application/json", "Content-Length": str(95_000_000)}
    assert " 403 " in raw_post(port, "/hook", big)
    assert " 413 " in raw_post(port, "/hook", {**big, "X-Telegram-Bot-Api-Secret-Token": "right-secret"})
    # A body that is sent in full, unauthenticated, is refused and not kept.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 30000000\r\n\r\n")
        try:
            for _ in range(30):
                s.sendall(b"x" * 1_000_000)
        except OSError:  # refused and closed before all of it went
            pass
    assert bot.rss_mb() - rss < 20
    assert reply_after(fake, 44, "/help").text == texts.HELP  # real updates still come through


def test_an_update_that_cannot_be_read_is_dropped_without_its_text_in_the_log(fake, start_bot):
    port = free_port()
    bot = start_bot(fake, WEBHOOK_URL=f"http://127.0.0.1:{port}/hook", WEBHOOK_LISTEN=f"127.0.0.1:{port}",
                    WEBHOOK_SECRET="right-secret", LOG_LEVEL="DEBUG")
    broken = {"update_id": 77, "message": {"message_id": 1, "date": 0, "chat": "不是一个聊天",
                                           "text": "/write 我的私密日记内容"}}
    assert fake.post_update(broken, "right-secret") == 400
    assert reply_after(fake, 45, "/help").text == texts.HELP
    log = bot.log()
    assert "dropped an update" in log
    assert "私密日记" not in log and "不是一个聊天" not in log


def test_two_bots_started_together_one_is_refused_in_one_line(fake, tiny_model_dir, tmp_path):
    bots = [BotProcess(fake, tiny_model_dir, tmp_path / "db", tmp_path / f"{i}.log") for i in range(2)]
    bots[0].spawn()
    time.sleep(0.7)  # the second checks the database while the first loads its model (seconds), before it serves
    bots[1].spawn()
    try:
        loser = fake.wait_for(lambda: next((b for b in bots if b.proc.poll() is not None), None), 120,
                              "one of the two to exit")
        assert loser.proc.returncode == 1
        errors = [line for line in loser.log().splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "another bot process is using this database" in errors[0]
        assert "Traceback" not in loser.log()
        fake.wait_for(lambda: fake.polls > 0, 90, "the other to poll")
        assert reply_after(fake, 46, "/help").text == texts.HELP
    finally:
        for b in bots:
            b.stop()
