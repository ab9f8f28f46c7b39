"""Stories told with people, end to end through the fake Bot API: a person's own lines join the story."""

from bot import texts
from tests.bot.harness import finished_part, reply_after

PARAGRAPH = "\n\u3000\u3000"


def test_a_plain_line_in_a_private_chat_joins_the_story_and_the_bot_goes_on(fake, start_bot):
    start_bot(fake)
    reply_after(fake, 51, "/len 50")
    opening = finished_part(fake, 51, "乔峰带阿朱")  # no story yet: a plain line starts one
    assert opening.text.startswith("乔峰带阿朱") and len(opening.text) == 5 + 50
    after = finished_part(fake, 51, "乔峰突然拔出刀来")
    assert len(after.text) == 50
    story = reply_after(fake, 51, "/story").document.decode("utf-8")
    assert story == opening.text + PARAGRAPH + "乔峰突然拔出刀来" + after.text
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
    assert story == (first.text + PARAGRAPH + "黄蓉笑道：“靖哥哥。”" + second.text
                     + PARAGRAPH + "郭靖点了点头" + third.text)
    assert reply_after(fake, -52, "/add", user_id=3, **group).text == texts.ADD_USAGE
