"""Stories told with people, end to end through the fake Bot API: a person's own lines join the story."""

from bot import texts
from tests.bot.harness import by_part, finished_part, joined, reply_after


def test_a_plain_line_in_a_private_chat_joins_the_story_and_the_bot_goes_on(fake, start_bot):
    start_bot(fake)
    reply_after(fake, 51, "/len 50")
    opening = finished_part(fake, 51, "乔峰带阿朱")  # no story yet: a plain line starts one
    assert opening.text.startswith("乔峰带阿朱") and len(opening.text) == 5 + 50
    after = finished_part(fake, 51, "乔峰突然拔出刀来")
    assert len(after.text) == 50
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
    assert reply_after(fake, 53, "/undo").text == texts.undone(texts.AUTHOR_BOT, 50)
    story = reply_after(fake, 53, "/story").document.decode("utf-8")
    assert story == joined(first.text, "段誉拔剑而起")
    bot.stop()
    start_bot(fake, log="2.log")  # a restart keeps the whole history, undo included
    assert reply_after(fake, 53, "/redo").text == texts.redone(texts.AUTHOR_BOT, 50)
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
