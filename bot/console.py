"""The console adapter: the bot's commands in a terminal, without Telegram.

    python -m bot --console

Lines from stdin, replies on stdout; the same story engine, database and command handling
as the Telegram bot (bot.frontend; chat id 0). /rewrite stands in for the 重写 button, and
1 / 2 / 3 for the ① ② ③ of /choices; a line that is not a command joins the story as the
person's own (as /add).
"""

from __future__ import annotations

import asyncio
import sys

from bot import roles, texts
from bot.config import BotConfig
from bot.frontend import answering, dispatch, stream
from bot.part import Part
from bot.resources import open_resources

CONSOLE_CHAT = 0
BUTTONS = f"[{texts.BUTTON_CONTINUE}: /continue  {texts.BUTTON_REWRITE}: /rewrite]"


class ConsoleOutput:
    """Lines on stdout; a part is printed as it grows, then the buttons' stand-ins."""

    votes = False  # one person: a choice is decided by typing its number
    thread_id = None

    def __init__(self, stdout):
        self.stdout = stdout
        self.last_part: Part | None = None  # what /rewrite writes again

    def write(self, text: str, end: str = "\n") -> None:
        self.stdout.write(text + end)
        self.stdout.flush()

    async def say(self, text: str) -> None:
        self.write(text)

    async def send_story(self, text: str) -> None:
        self.write(text)

    def part_view(self) -> "ConsolePart":
        return ConsolePart(self)


# Characters of a growing part held back until it is whole: a part that stops before a played character
# speaks drops their name and what led to their 道： (up to roles.ROLE_MAX + 12), and printed text stays.
HELD_BACK = roles.ROLE_MAX + 12


class ConsolePart:
    def __init__(self, out: ConsoleOutput):
        self.out, self.shown = out, 0  # characters printed so far

    async def update(self, text: str, held: int = HELD_BACK) -> None:
        upto = len(text) - held
        if upto > self.shown:
            self.out.write(text[self.shown:upto], end="")
            self.shown = upto

    async def finish(self, text: str, part: Part) -> None:
        await self.update(text, held=0)
        self.out.write("")
        self.out.write(BUTTONS if not part.choices else
                       BUTTONS[:-1] + "  " + texts.CONSOLE_CHOOSE.format(numbers=" / ".join(
                           str(i + 1) for i in range(len(part.choices)))) + "]")
        self.out.last_part = part


async def run_console(config: BotConfig, model, stdin=None, stdout=None, lock_fd: int | None = None) -> None:
    stdin = stdin or sys.stdin
    res = await open_resources(config, model, lock_fd)
    engine = res["engine"]
    loop = asyncio.get_running_loop()
    out = ConsoleOutput(stdout or sys.stdout)
    out.write(texts.HELP)
    try:
        while True:
            line = await loop.run_in_executor(None, stdin.readline)
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            chosen = typed_choice(line, out.last_part)
            if chosen is None and line.isdigit():  # a number, and no beat of that number to choose
                out.write(texts.NO_CHOICE)
                continue
            if chosen is not None:  # 1 / 2 / 3 after a part with choices: that beat joins the story
                part = out.last_part
                await dispatch(engine, CONSOLE_CHAT, CONSOLE_CHAT, "choose", f"{part.version} {part.end} {chosen}",
                               out, texts.CONSOLE_NAME)
                continue
            if not line.startswith("/") and line.lower() not in ("quit", "exit"):  # one's own line joins the story
                await dispatch(engine, CONSOLE_CHAT, CONSOLE_CHAT, "add", line, out, texts.CONSOLE_NAME)
                continue
            word, _, arg = line.partition(" ")
            command = word.split("@")[0].lower().removeprefix("/")
            if command in ("quit", "exit"):
                break
            if command == "rewrite":
                if out.last_part is None:
                    out.write(texts.NOTHING_TO_REWRITE)
                else:
                    part = out.last_part
                    await answering(engine, out, stream(engine.rewrite(CONSOLE_CHAT, part.version, part.start), out))
                continue
            await dispatch(engine, CONSOLE_CHAT, CONSOLE_CHAT, command, arg, out, texts.CONSOLE_NAME)
    finally:
        await res["close"]()


def typed_choice(line: str, part: Part | None) -> int | None:
    """The option a typed "1", "2" or "3" picks after a part offered choices (0: the first), else None."""
    if part is None or not part.choices or not line.isdigit() or not 1 <= int(line) <= len(part.choices):
        return None
    return int(line) - 1
