"""Characters people play: the forms of /say and /do, and where the bot stops for someone's character."""

from bot.roles import act, role_problem, say, speaker_at, speaks_at


def test_say_and_do_take_the_novels_own_form():
    assert say("段誉", "你好") == "段誉道：“你好。”"
    assert say("段誉", "“走吧！”") == "段誉道：“走吧！”"  # the person's own quotes and ending kept once
    assert act("段誉", "拔剑而起") == "段誉拔剑而起。"
    assert act("段誉", "段誉大笑！") == "段誉大笑！"


def test_the_bot_stops_where_a_played_character_would_speak():
    roles = ["段誉", "王语嫣"]
    assert speaks_at("萧峰道：“好。”段誉笑道：“走。”", roles) == 8
    assert speaks_at("王语嫣在大理说道：“嗯。”", roles) == 0
    assert speaks_at("段誉冷冷地道：", roles) == 0
    assert speaks_at("段誉知道他来了。", roles) is None  # 知道 is knowing, not speaking
    assert speaks_at("萧峰道：“段誉，你来。”", roles) is None  # spoken to, not speaking
    assert speaks_at("段誉道：", []) is None
    assert speaks_at("段誉心中一凛，摇头道：“不。”", roles) == 0  # a clause before the speech
    assert speaks_at("只听段誉大叫：“救命！”", roles) == 2
    assert speaks_at("段誉心想：“她不会来了。”", roles) == 0  # thinking aloud is the person's to write too
    assert speaks_at("萧峰对段誉道：“走。”", roles) is None  # spoken to
    assert speaks_at("段誉走了。萧峰道：“好。”", roles) is None  # the speaker is in the next sentence


def test_role_names_are_short_and_readable():
    known = set("段誉王语嫣慕容复")
    assert role_problem("段誉", known) is None and role_problem("慕容复", known) is None
    assert role_problem("段誉段誉段誉段誉段", known) == "long"
    assert role_problem("段誉！", known) == "marks" and role_problem("段 誉", known) == "marks"
    assert role_problem("Tom", known) == "marks"  # letters the model reads as [UNK]


def test_a_persons_line_is_read_in_the_corpus_form():
    from bot.reading import as_read

    assert as_read('乔峰說:"走吧..."') == "乔峰说：“走吧……”"  # traditional, ASCII colon and quotes, dots
    assert as_read("「你好」，他說。") == "“你好”，他说。"
    assert as_read("他走了.") == "他走了。" and as_read("价格3.5两") == "价格3.5两"  # not a decimal point
    assert as_read("阿朱□笑") == "阿朱笑" and as_read("hello, world") == "hello, world"


def written(*draws: str, played=("黄蓉",)):
    """A Part whose first draw is draws[0] and each fresh start (Part.again) the next, `played` played;
    (part, its pieces)."""
    import asyncio

    from bot.part import Part

    async def stream(text):
        for i in range(0, len(text), 4):  # a few characters a round
            yield text[i:i + 4]

    left = list(draws[1:])
    part = Part(1, 1, 0, "", "", _run=stream(draws[0]), roles=list(played), target=40,
                again=lambda: stream(left.pop(0)) if left else None)

    async def go():
        return [piece async for piece in part.pieces()]
    return part, asyncio.run(go())


def test_a_part_that_would_begin_by_speaking_for_a_played_character_is_written_afresh():
    part, _ = written("\n　　黄蓉又道：“走罢。”", "郭靖点了点头，道：“好。”黄蓉笑道：“走。”")
    assert part.retries == 1 and part.text == "郭靖点了点头，道：“好。”" and part.turn == "黄蓉"
    part, _ = written("郭靖道：“好。”黄蓉道：“走。”", "unused")  # words of its own first: it stops, no retry
    assert part.retries == 0 and part.text == "郭靖道：“好。”" and part.turn == "黄蓉"


def test_after_three_fresh_starts_that_all_speak_for_her_the_part_is_empty_and_it_is_her_turn():
    part, pieces = written(*["黄蓉道：“走罢。”"] * 5)
    assert part.retries == 3 and part.text == "" and part.turn == "黄蓉" and "".join(pieces) == ""
    part, _ = written("黄蓉道：“走罢。”")  # no fresh start to be had (the bot is busy): it stops at once
    assert part.retries == 0 and part.text == "" and part.turn == "黄蓉"


def test_the_bot_does_not_speak_for_a_played_character_by_another_of_his_names():
    assert speaks_at("段誉道：“好。”萧峰道：“走。”", ["乔峰"]) == 8  # 乔峰 is 萧峰 from the middle of the novel on
    assert speaks_at("乔峰笑道：“走。”", ["萧峰"]) == 0
    assert speaks_at("段誉对萧峰道：“走。”", ["乔峰"]) is None  # spoken to
    assert speaker_at("段誉道：“好。”萧峰道：“走。”", 8, ["段誉", "乔峰"]) == "乔峰"  # whose turn: as played
    part, _ = written("郭靖道：“好。”萧峰叹道：“走。”", played=["乔峰"])
    assert part.text == "郭靖道：“好。”" and part.turn == "乔峰"
