"""Stories told with people, end to end through the fake Bot API: a person's own lines join the story."""

import signal
import time

from bot import texts
from bot.sentences import CLOSERS
from tests.bot.harness import a_part_of, by_part, finished_part, joined, reply_after


def test_a_plain_line_in_a_private_chat_joins_the_story_and_the_bot_goes_on(fake, start_bot):
    start_bot(fake)
    reply_after(fake, 51, "/len 50")
    opening = finished_part(fake, 51, "乔峰带阿朱")  # no story yet: a plain line starts one
    assert opening.text.startswith("乔峰带阿朱") and a_part_of(opening.text[5:], 50)
    after = finished_part(fake, 51, "乔峰突然拔出刀来")
    assert a_part_of(after.text, 50)
    story = reply_after(fake, 51, "/story").document.decode("utf-8")
    assert story == joined(opening.text, "乔峰突然拔出刀来") + after.text
    assert reply_after(fake, 51, "😀😀").text == texts.ADD_UNREADABLE
    assert reply_after(fake, 51, "/story").document.decode("utf-8") == story  # refused: nothing changed


def test_in_a_group_replies_to_the_bot_and_add_join_other_chatter_does_not(fake, start_bot):
    start_bot(fake)
    group = dict(chat_type="group")
    reply_after(fake, -52, "/len 50", user_id=1, **group)
    first = finished_part(fake, -52, "/write 郭靖", user_id=1, **group)
    fake.command(-52, "今天天气不错", user_id=2, **group)  # not to the bot: ignored
    second = finished_part(fake, -52, "/add 黄蓉笑道：“靖哥哥。”", user_id=2, **group)
    third = finished_part(fake, -52, "郭靖点了点头", user_id=3, reply_to=second.message_id, **group)
    story = reply_after(fake, -52, "/story", user_id=1, **group).document.decode("utf-8")
    assert story == joined(joined(first.text, "黄蓉笑道：“靖哥哥。”") + second.text, "郭靖点了点头") + third.text
    assert reply_after(fake, -52, "/add", user_id=3, **group).text == texts.ADD_USAGE


def test_undo_redo_and_who_wrote_what_survive_a_restart(fake, start_bot):
    bot = start_bot(fake, log="1.log")
    reply_after(fake, 53, "/len 50")
    first = finished_part(fake, 53, "/write 段誉")
    mine = finished_part(fake, 53, "段誉拔剑而起")
    assert reply_after(fake, 53, "/undo").text == texts.undone(texts.AUTHOR_BOT, len(mine.text))
    story = reply_after(fake, 53, "/story").document.decode("utf-8")
    assert story == joined(first.text, "段誉拔剑而起")
    bot.stop()
    start_bot(fake, log="2.log")  # a restart keeps the whole history, undo included
    assert reply_after(fake, 53, "/redo").text == texts.redone(texts.AUTHOR_BOT, len(mine.text))
    story = reply_after(fake, 53, "/story").document.decode("utf-8")
    assert story == joined(first.text, "段誉拔剑而起") + mine.text
    assert reply_after(fake, 53, "/redo").text == texts.NOTHING_TO_REDO
    who = by_part(reply_after(fake, 53, "/story who").document.decode("utf-8"))
    assert who[0] == "【1】user53（开头）\n段誉" and who[2] == "【3】user53（自己写的一句）\n段誉拔剑而起"
    assert who[1].startswith("【2】金庸体机器人（续写）") and who[3].startswith("【4】金庸体机器人（续写）")
    for _ in range(4):
        reply_after(fake, 53, "/undo")
    assert reply_after(fake, 53, "/undo").text == texts.NOTHING_TO_UNDO


def test_play_a_character_with_say_and_do(fake, start_bot):
    start_bot(fake)
    reply_after(fake, 54, "/len 50")
    assert reply_after(fake, 54, "/say 你好").text == texts.ROLE_NEEDED
    assert reply_after(fake, 54, "/role 段誉！").text.startswith("角色名只能是")
    assert reply_after(fake, 54, "/role").text == texts.ROLE_NONE  # a refused name changed nothing
    assert reply_after(fake, 54, "/role 段誉").text == texts.role_set("段誉")
    first = finished_part(fake, 54, "/write 乔峰")
    spoke = finished_part(fake, 54, "/say 阿朱，出掌")
    did = finished_part(fake, 54, "/do 拔剑")
    assert reply_after(fake, 54, "/do").text == texts.DO_USAGE
    story = reply_after(fake, 54, "/story").document.decode("utf-8")
    assert story == joined(joined(first.text, "段誉道：“阿朱，出掌。”") + spoke.text, "段誉拔剑。") + did.text
    who = reply_after(fake, 54, "/story who").document.decode("utf-8")
    assert "【3】user54（说的话）\n段誉道：“阿朱，出掌。”" in who and "【5】user54（动作）\n段誉拔剑。" in who
    assert reply_after(fake, 54, "/role off").text == texts.ROLE_OFF


def options_of(part) -> tuple[str, list[str]]:
    """A finished part's message: (its text, the beats offered under it as shown)."""
    text, _, block = part.text.partition("\n\n下一步？\n")
    return text, [line[2:] for line in block.split("\n")] if block else []


def newest_part(fake, chat_id, before: set):
    return fake.wait_for(lambda: next((m for m in fake.chat(chat_id) if m.reply_markup and m.message_id not in before),
                                      None), 60, "a new part")


def parts_seen(fake, chat_id) -> set:
    return {m.message_id for m in fake.chat(chat_id) if m.reply_markup}


def test_one_private_story_of_lines_a_character_a_choice_undo_and_redo_survives_a_restart(fake, start_bot):
    bot = start_bot(fake, log="1.log")
    reply_after(fake, 61, "/len 50")
    opening = finished_part(fake, 61, "乔峰带阿朱")  # plain text starts the story
    reply_after(fake, 61, "/role 段誉")
    spoke = finished_part(fake, 61, "/say 大哥")
    did = finished_part(fake, 61, "/do 拔剑")
    reply_after(fake, 61, "/role off")
    assert reply_after(fake, 61, "/choices on").text == texts.choices_set(True)
    offered = finished_part(fake, 61, "/continue")
    text, beats = options_of(offered)
    keys = offered.reply_markup["inline_keyboard"]
    assert [b["text"] for b in keys[0]] == list(texts.CHOICE_MARKS[:len(beats)]) and len(beats) >= 1
    assert [b["text"] for b in keys[1]] == [texts.BUTTON_CONTINUE, texts.BUTTON_REWRITE]
    before = parts_seen(fake, 61)
    fake.press(61, offered.message_id, keys[0][-1]["callback_data"])  # the last beat offered
    chosen = newest_part(fake, 61, before)
    chosen_text, _ = options_of(chosen)
    # The beat shown before the part it led to: the shortest start of the message that reads as it.
    cut = next(k for k in range(len(chosen_text) + 1) if flat(chosen_text[:k]) == beats[-1])
    beat, after = chosen_text[:cut], chosen_text[cut:]
    assert a_part_of(after, 50)
    story = reply_after(fake, 61, "/story").document.decode("utf-8")
    # (the beat as shown leaves out its line break, and a closing quote it may begin with: bot.choices.display)
    assert story.endswith(beat + after)
    assert story[:-len(beat + after)].rstrip("\n\u3000" + CLOSERS).endswith(text.rstrip())
    fake.press(61, offered.message_id, keys[0][0]["callback_data"])  # the choice has closed
    fake.wait_for(lambda: fake.texts(61)[-1] == texts.CHOICE_CLOSED, 30, "the closed choice told")
    assert reply_after(fake, 61, "/undo").text == texts.undone(texts.AUTHOR_BOT, len(after))
    assert reply_after(fake, 61, "/redo").text == texts.redone(texts.AUTHOR_BOT, len(after))
    bot.stop()
    start_bot(fake, log="2.log")
    after = reply_after(fake, 61, "/story").document.decode("utf-8")
    assert after == story
    who = by_part(reply_after(fake, 61, "/story who").document.decode("utf-8"))
    bot_part = f"{texts.AUTHOR_BOT}（续写）"
    assert [w.split("\n")[0] for w in who] == [
        "【1】user61（开头）", f"【2】{bot_part}", "【3】user61（说的话）", f"【4】{bot_part}", "【5】user61（动作）",
        f"【6】{bot_part}", f"【7】{bot_part}", "【8】user61（选的下一步）", f"【9】{bot_part}"]
    assert who[2].endswith("段誉道：“大哥。”") and who[4].endswith("段誉拔剑。")
    assert story.startswith(opening.text) and spoke.text in story and did.text in story


def flat(text: str) -> str:
    """Text as an options list shows it: on one line."""
    return " ".join(text.split())


def answers(fake) -> list[str]:
    return [str(p.get("text", "")) for _, method, p in fake.calls if method == "answerCallbackQuery"]


def test_a_group_vote_is_decided_by_a_majority_another_by_time_and_one_left_open_by_a_crash(fake, start_bot):
    bot = start_bot(fake, log="1.log", CHOICE_SECONDS=2)
    group = dict(chat_type="group")
    reply_after(fake, -62, "/len 50", user_id=1, **group)
    reply_after(fake, -62, "/choices on", user_id=1, **group)
    first = finished_part(fake, -62, "/write 郭靖", user_id=1, **group)
    before = parts_seen(fake, -62)
    fake.command(-62, "/add 黄蓉笑了", user_id=2, **group)  # members: 1 started it, 2 wrote a line
    second = newest_part(fake, -62, before)
    assert options_of(first)[1] and options_of(second)[1]
    key = second.reply_markup["inline_keyboard"][0][0]["callback_data"]
    before = parts_seen(fake, -62)
    fake.press(-62, second.message_id, key, user_id=1)
    fake.wait_for(lambda: answers(fake) and answers(fake)[-1].startswith("你投了 ①"), 30, "the vote answered")
    assert "2 票过半" in answers(fake)[-1]
    time.sleep(0.5)
    assert parts_seen(fake, -62) == before  # one vote of two members: not yet
    fake.press(-62, second.message_id, key, user_id=2)  # a majority: decided at once
    by_majority = newest_part(fake, -62, before)
    assert flat(options_of(by_majority)[0]).startswith(options_of(second)[1][0])
    key = by_majority.reply_markup["inline_keyboard"][0][-1]["callback_data"]
    before = parts_seen(fake, -62)
    fake.press(-62, by_majority.message_id, key, user_id=2)  # one vote of two: decided when its time is up
    by_time = newest_part(fake, -62, before)
    assert by_time.created - by_majority.finished >= 1.0  # CHOICE_SECONDS=2 from the offer
    assert flat(options_of(by_time)[0]).startswith(options_of(by_majority)[1][-1])
    # A vote open when the bot is killed is decided after the restart (its time is up by then).
    key = by_time.reply_markup["inline_keyboard"][0][0]["callback_data"]
    fake.press(-62, by_time.message_id, key, user_id=1)
    fake.wait_for(lambda: answers(fake)[-1].startswith("你投了 ①"), 30, "the vote answered")
    bot.stop(signal.SIGKILL)
    before = parts_seen(fake, -62)
    start_bot(fake, log="2.log", CHOICE_SECONDS=2)
    after_restart = newest_part(fake, -62, before)
    assert flat(options_of(after_restart)[0]).startswith(options_of(by_time)[1][0])
    who = reply_after(fake, -62, "/story who", user_id=1, **group).document.decode("utf-8")
    assert who.count(f"{texts.AUTHOR_VOTE}（选的下一步）") == 3


def test_a_groups_lines_wait_their_turn_while_the_bot_writes_none_lost(fake, start_bot):
    bot = start_bot(fake, log="1.log")
    group = dict(chat_type="group")
    reply_after(fake, -63, "/len 50", user_id=1, **group)
    fake.fail("sendMessage", "hang", 4, chat_id=-63)  # the part's first text hangs: the bot is busy meanwhile
    fake.command(-63, "/write 乔峰", user_id=1, **group)
    fake.wait_for(lambda: fake.hanging, 30, "the part in flight")
    lines = [(2, "/add 阿朱哭了"), (3, "/add 段誉叹了口气"), (1, "/add 乔峰不答")]
    for user, line in lines:
        reply = reply_after(fake, -63, line, user_id=user, **group)
        assert reply.text.startswith("记下了"), reply.text
    assert "排第 3" in reply.text
    before = parts_seen(fake, -63)
    fake.wait_for(lambda: len(parts_seen(fake, -63) - before) >= 2, 60, "the part, then one after the lines")
    story = reply_after(fake, -63, "/story", user_id=1, **group).document.decode("utf-8")
    who = by_part(reply_after(fake, -63, "/story who", user_id=1, **group).document.decode("utf-8"))
    line, bot_part = "（自己写的一句）", f"{texts.AUTHOR_BOT}（续写）"
    assert [w.split("\n")[0] for w in who] == ["【1】user1（开头）", f"【2】{bot_part}", f"【3】user2{line}",
                                               f"【4】user3{line}", f"【5】user1{line}", f"【6】{bot_part}"]
    assert [w.split("\n", 1)[1].strip() for w in who[2:5]] == ["阿朱哭了", "段誉叹了口气", "乔峰不答"]
    # Lines waiting at a crash are joined once the bot is back, and only once.
    fake.fail("sendMessage", "hang", 30, chat_id=-63)
    fake.command(-63, "/continue", user_id=1, **group)
    fake.wait_for(lambda: fake.hanging, 30, "the next part in flight")
    for i in range(5):
        assert reply_after(fake, -63, f"/add 阿朱哭了{i}", user_id=2, **group).text.startswith("记下了")
    assert reply_after(fake, -63, "/add 段誉又叹气", user_id=3, **group).text == texts.WAIT_FULL
    bot.stop(signal.SIGKILL)
    before = parts_seen(fake, -63)
    start_bot(fake, log="2.log")
    newest_part(fake, -63, before)  # the lines that waited, and one part after them
    after = reply_after(fake, -63, "/story", user_id=1, **group).document.decode("utf-8")
    assert after.startswith(story) and [after.count(f"阿朱哭了{i}") for i in range(5)] == [1] * 5
    assert "段誉又叹气" not in after


def test_a_private_line_waits_while_the_bot_writes_and_survives_a_crash_while_it_is_read(fake, start_bot):
    bot = start_bot(fake, log="1.log")
    reply_after(fake, 64, "/len 50")
    fake.fail("sendMessage", "hang", 4, chat_id=64)
    fake.command(64, "/write 乔峰")
    fake.wait_for(lambda: fake.hanging, 30, "the part in flight")
    assert reply_after(fake, 64, "阿朱哭了").text == texts.waiting_place(1)  # not refused: it waits its turn
    before = parts_seen(fake, 64)
    fake.wait_for(lambda: len(parts_seen(fake, 64) - before) >= 2, 60, "the part, then one after the line")
    story = reply_after(fake, 64, "/story").document.decode("utf-8")
    assert story.count("阿朱哭了") == 1
    fake.fail("sendMessage", "hang", 30, chat_id=64)  # the part after the next line hangs: killed meanwhile
    fake.command(64, "段誉叹了口气")
    fake.wait_for(lambda: fake.hanging, 30, "the part after the line in flight")
    bot.stop(signal.SIGKILL)
    before = parts_seen(fake, 64)
    start_bot(fake, log="2.log")
    newest_part(fake, 64, before)  # the line was kept, and is joined once the bot is back
    after = reply_after(fake, 64, "/story").document.decode("utf-8")
    assert after.startswith(joined(story, "段誉叹了口气")) and after.count("段誉叹了口气") == 1
