"""The console adapter: the bot's commands in a terminal, without Telegram.

    python -m bot --console

Lines from stdin, replies on stdout; the same story engine and database as the
Telegram bot (chat id 0). /rewrite stands in for the 重写 button.
"""

from __future__ import annotations

import asyncio
import sys

from bot import texts
from bot.config import BotConfig
from bot.engine import UserError, report_failure
from bot.resources import open_resources

CONSOLE_CHAT = 0


async def run_console(config: BotConfig, model, stdin=None, stdout=None) -> None:
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    res = await open_resources(config, model)
    engine = res["engine"]
    loop = asyncio.get_running_loop()
    last_part = None

    def say(text: str = "", end: str = "\n") -> None:
        stdout.write(text + end)
        stdout.flush()

    async def stream(opening):
        nonlocal last_part
        try:
            async with opening as part:
                if part.notice:
                    say(part.notice)
                say(part.header, end="")
                async for piece in part.pieces():
                    say(piece, end="")
                say()
                say(f"[{texts.BUTTON_CONTINUE}: /continue  {texts.BUTTON_REWRITE}: /rewrite]")
                last_part = (part.version, part.start)
        except UserError as e:
            say(str(e))

    async def handle(command: str, arg: str) -> None:
        if command in ("/start", "/help"):
            say(texts.HELP)
        elif command == "/write":
            await stream(engine.write(CONSOLE_CHAT, arg))
        elif command == "/continue":
            await stream(engine.continue_story(CONSOLE_CHAT))
        elif command == "/rewrite":
            if last_part is None:
                say(texts.NOTHING_TO_REWRITE)
            else:
                await stream(engine.rewrite(CONSOLE_CHAT, *last_part))
        elif command == "/temp":
            say(await engine.temperature(CONSOLE_CHAT, arg))
        elif command == "/len":
            say(await engine.length(CONSOLE_CHAT, arg))
        elif command == "/book":
            say(await engine.book(CONSOLE_CHAT, arg))
        elif command == "/reset":
            say(await engine.reset(CONSOLE_CHAT) or texts.BUSY_CHAT)
        elif command == "/story":
            say(await engine.story_text(CONSOLE_CHAT) or texts.NO_STORY)
        else:
            say(texts.UNKNOWN_COMMAND)

    say(texts.HELP)
    try:
        while True:
            line = await loop.run_in_executor(None, stdin.readline)
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            command, _, arg = line.partition(" ")
            command = command.split("@")[0].lower()
            if command in ("/quit", "/exit"):
                break
            try:
                await handle(command, arg)
            except Exception as e:  # noqa: BLE001  (a full disk, a failed round: say what Telegram would, go on)
                say(report_failure(e, config.database_path))
    finally:
        await res["close"]()
