"""金庸味 (/score) in the bot: any text, or the person's newest line, against the model's ruler."""

import re

from bot import texts
from tests.bot.harness import BotProcess, finished_part, reply_after
from tests.bot.test_console import BUTTONS, Console

SCORED = re.compile(r"金庸味 (\d+)/100")


def points(answer: str) -> int:
    found = SCORED.search(answer)
    assert found, answer
    assert 0 <= int(found.group(1)) <= 100
    return int(found.group(1))


def test_score_a_text_or_ones_newest_line_in_the_console(rated_model_dir, tmp_path):
    console = Console(rated_model_dir, tmp_path / "db")
    points(console.say("/score 乔峰道：“阿朱，叹了口气。”", "/100"))
    assert texts.SCORE_USAGE in console.say("/score", texts.SCORE_USAGE)  # no text, no line of one's own yet
    assert texts.SCORE_UNREADABLE in console.say("/score 😀😀", texts.SCORE_UNREADABLE)
    console.say("/len 50", texts.LEN_SET.format(value=50))
    console.say("/write 段誉", BUTTONS)
    console.say("段誉拔剑而起", BUTTONS)
    story = console.say("/story", "段誉拔剑而起")
    answer = console.say("/score", "/100")  # the newest line this person wrote
    assert answer.startswith("「段誉拔剑而起」") and points(answer) >= 0
    assert console.say("/story", "段誉拔剑而起") == story  # scoring changes nothing
    assert console.quit() == 0
    assert "Traceback" not in "".join(console.err)


def test_a_model_without_a_ruler_says_so(tiny_model_dir, tmp_path):
    console = Console(tiny_model_dir, tmp_path / "db")
    assert texts.SCORE_NO_RULER in console.say("/score 乔峰", texts.SCORE_NO_RULER)
    assert console.quit() == 0


def test_score_through_the_bot_api(fake, rated_model_dir, tmp_path):
    bot = BotProcess(fake, rated_model_dir, tmp_path / "db", tmp_path / "bot.log").start()
    try:
        points(reply_after(fake, 61, "/score 那老者冷笑一声，道：“你是什么人？”").text)
        reply_after(fake, 61, "/len 50")
        finished_part(fake, 61, "/write 乔峰")
        finished_part(fake, 61, "乔峰突然拔出刀来")
        answer = reply_after(fake, 61, "/score").text
        assert answer.startswith("「乔峰突然拔出刀来」") and points(answer) >= 0
    finally:
        bot.stop()
