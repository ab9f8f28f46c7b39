"""Characters people play: checking a role's name, /say and /do in the novels' own form, and where
the bot must stop so as not to speak for a character someone plays.

    say("段誉", "你好")        -> '段誉道：“你好。”'
    act("段誉", "拔剑而起")    -> '段誉拔剑而起。'
    speaks_at("…段誉笑道：“…", ["段誉"]) -> index of "段誉" (the bot's part ends before it)
    speaks_at("…萧峰道：“…", ["乔峰"])   -> index of "萧峰" (the same man: his other name, ALIASES)
"""

from __future__ import annotations

import re
import unicodedata

ROLE_MAX = 8  # characters in a role's name
ENDS = "。！？…”"  # what may end a sentence already (no full stop added)
# The character speaks (or thinks aloud): their name, then within one sentence (commas allowed, at most
# BETWEEN_MAX characters) 道： or a colon and an opening quote: 段誉道：, 段誉笑道：, 段誉冷冷地道：,
# 段誉心中一凛，道：“, 段誉大叫：“, 段誉心想：“ — but not 段誉知道他… (no colon), “段誉，你…” (no colon),
# nor 萧峰对段誉道：“ (spoken to: the name after 对, 向, 跟, 和, 与, 朝, 问, 给).
BETWEEN = r"[^。！？：；“”‘’\n]{0,10}?"
SPOKEN_TO = "对向跟和与朝问给"
# Other names the novels give one person as the speaker of a line: whoever plays one is spoken for by
# neither. 乔峰 is 萧峰 from the middle of 天龙八部 on (the model writes both for him), 张无忌 goes as
# 曾阿牛 for a while in 倚天屠龙记. (A longer name that begins with the role's, 虚竹子, is caught as it is.)
ALIASES = {"乔峰": ("萧峰",), "萧峰": ("乔峰",), "张无忌": ("曾阿牛",), "曾阿牛": ("张无忌",)}


def role_problem(name: str, known: set[str]) -> str | None:
    """Why `name` cannot be a role ("long", "marks": not all letters the model reads), or None if it can."""
    if len(name) > ROLE_MAX:
        return "long"
    if not all(unicodedata.category(c).startswith("L") and c in known for c in name):
        return "marks"
    return None


def say(role: str, words: str) -> str:
    """A character's speech as the novels write it: 段誉道：“你好。” (closing full stop added where missing)."""
    words = words.strip().strip("“”\"'「」")
    if not words.endswith(tuple(ENDS)):
        words += "。"
    return f"{role}道：“{words}”"


def act(role: str, action: str) -> str:
    """A character's action: 段誉拔剑而起。 (the name once, a full stop where missing)."""
    action = action.strip()
    if action.startswith(role):
        action = action[len(role):]
    return f"{role}{action}" + ("" if action.endswith(tuple(ENDS)) else "。")


def names_of(roles: list[str]) -> dict[str, str]:
    """{name the text may call them by: the role played} for `roles`, their ALIASES with them."""
    names = {alias: role for role in roles for alias in ALIASES.get(role, ())}
    return names | {role: role for role in roles}


def speaks_at(text: str, roles: list[str]) -> int | None:
    """Where in `text` one of `roles` begins to speak (their name, or another of theirs, before 道：), or None."""
    if not roles:
        return None
    names = "|".join(re.escape(n) for n in sorted(names_of(roles), key=len, reverse=True))
    found = re.search(f"(?<![{SPOKEN_TO}])(?:{names}){BETWEEN}(?:道[：:]|[：:]“)", text)
    return found.start() if found else None


def speaker_at(text: str, at: int, roles: list[str]) -> str:
    """The role that begins to speak at `at` (speaks_at's index), as it is played (乔峰 for 萧峰道：)."""
    names = names_of(roles)
    return names[max((n for n in names if text.startswith(n, at)), key=len)]
