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


def test_score_on_tells_each_line_under_the_part_that_follows_it_and_is_kept(rated_model_dir, tmp_path):
    console = Console(rated_model_dir, tmp_path / "db")
    console.say("/len 50", texts.LEN_SET.format(value=50))
    assert texts.flavour_set(True) in console.say("/score on", texts.flavour_set(True))
    part = console.say("/write 段誉", BUTTONS)  # the opening is a person's line too
    assert points(part) >= 0 and "「段誉」" in part
    part = console.say("段誉拔剑而起", BUTTONS)
    assert "「段誉拔剑而起」" in part and len(SCORED.findall(part)) == 1
    assert "金庸味" not in console.say("/continue", BUTTONS)  # no line of a person's: nothing to tell
    assert console.quit() == 0
    console = Console(rated_model_dir, tmp_path / "db")  # a restart keeps the setting
    assert "「乔峰突然拔出刀来」" in console.say("乔峰突然拔出刀来", BUTTONS)
    assert texts.flavour_set(False) in console.say("/score OFF", texts.flavour_set(False))
    assert "金庸味" not in console.say("乔峰大怒", BUTTONS)
    assert console.quit() == 0
    assert "Traceback" not in "".join(console.err)


def test_score_on_without_a_ruler_says_so_and_sets_nothing(tiny_model_dir, tmp_path):
    console = Console(tiny_model_dir, tmp_path / "db")
    assert texts.SCORE_NO_RULER in console.say("/score on", texts.SCORE_NO_RULER)
    console.say("/len 50", texts.LEN_SET.format(value=50))
    console.say("/write 段誉", BUTTONS)
    assert "金庸味" not in console.say("段誉拔剑而起", BUTTONS)
    assert console.quit() == 0


def test_score_on_through_the_bot_api(fake, rated_model_dir, tmp_path):
    bot = BotProcess(fake, rated_model_dir, tmp_path / "db", tmp_path / "bot.log").start()
    try:
        reply_after(fake, 62, "/len 50")
        assert reply_after(fake, 62, "/score on").text == texts.flavour_set(True)
        finished_part(fake, 62, "/write 乔峰")
        part = finished_part(fake, 62, "乔峰突然拔出刀来")
        assert "「乔峰突然拔出刀来」" in part.text and points(part.text) >= 0
    finally:
        bot.stop()
