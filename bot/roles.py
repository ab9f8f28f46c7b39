"""Characters people play: checking a role's name, /say and /do in the novels' own form, and where
the bot must stop so as not to speak for a character someone plays.

    say("段誉", "你好")        -> '段誉道：“你好。”'
    act("段誉", "拔剑而起")    -> '段誉拔剑而起。'
    speaks_at("…段誉笑道：“…", ["段誉"]) -> index of "段誉" (the bot's part ends before it)
"""

from __future__ import annotations

import re
import unicodedata

ROLE_MAX = 8  # characters in a role's name
ENDS = "。！？…”"  # what may end a sentence already (no full stop added)
# Between the name and 道： at most a few characters and no punctuation: 段誉道：, 段誉笑道：, 段誉说道：,
# 段誉冷冷地道：, 段誉在大理说道： — but not 段誉知道他… (no colon after 道) nor “段誉，你…” (a comma).
BETWEEN = r"[^，。！？：；、“”‘’\n\u3000]{0,4}?"


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


def speaks_at(text: str, roles: list[str]) -> int | None:
    """Where in `text` one of `roles` begins to speak (their name before 道：), or None."""
    if not roles:
        return None
    names = "|".join(re.escape(r) for r in sorted(roles, key=len, reverse=True))
    found = re.search(f"(?:{names}){BETWEEN}道[：:]", text)
    return found.start() if found else None
