"""`python -m bot --console`: the bot's commands in a terminal, as a newcomer first tries them."""

import os
import re
import resource
import subprocess
import sys
import threading
import time

from bot import texts
from tests.bot.harness import a_part_of, joined
from tests.conftest import ROOT

BUTTONS = f"[{texts.BUTTON_CONTINUE}: /continue  {texts.BUTTON_REWRITE}: /rewrite]"


class Console:
    """The console bot as a subprocess: lines to its stdin, its stdout and stderr collected."""

    def __init__(self, model_dir, db):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MODEL_DIR": str(model_dir), "DATABASE_PATH": str(db),
               "PYTHONUNBUFFERED": "1"}
        env.pop("TELEGRAM_BOT_TOKEN", None)  # the console needs none
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "--console", "--env-file", "/nonexistent"],
                                     cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, encoding="utf-8")
        self.out, self.err = [], []
        self.readers = [threading.Thread(target=self._read, args=(pipe, into), daemon=True)
                        for pipe, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for r in self.readers:
            r.start()

    @staticmethod
    def _read(pipe, into):
        for line in pipe:
            into.append(line)

    def stdout(self) -> str:
        return "".join(self.out)

    def say(self, line: str, then: str, timeout: float = 90) -> str:
        """Send one line; wait until `then` appears in what it prints next; return that output."""
        start = len(self.stdout())
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while then not in self.stdout()[start:]:
            assert self.proc.poll() is None, f"the console exited:\n{''.join(self.err)[-3000:]}"
            assert time.monotonic() < deadline, f"no {then!r} after {line!r}:\n{self.stdout()[start:]}"
            time.sleep(0.05)
        return self.stdout()[start:]

    def quit(self) -> int:
        self.proc.stdin.write("/quit\n")
        self.proc.stdin.flush()
        code = self.proc.wait(60)
        for r in self.readers:
            r.join(10)
        return code


def test_console_writes_continues_and_keeps_settings(tiny_model_dir, tmp_path):
    console = Console(tiny_model_dir, tmp_path / "db")
    assert console.say("/help", texts.HELP)
    assert texts.TEMP_SET.format(value=0.7) in console.say("/temp 0.7", texts.TEMP_SET.format(value=0.7))
    console.say("/len 50", texts.LEN_SET.format(value=50))
    first = console.say("/write 段誉", BUTTONS)
    assert first.startswith("段誉") and first.endswith(BUTTONS + "\n")
    first_text = first[: -len(BUTTONS) - 2]  # the part, then a newline, then the buttons line
    assert a_part_of(first_text[2:], 50)
    second_text = console.say("/continue", BUTTONS)[: -len(BUTTONS) - 2]
    assert a_part_of(second_text, 50)
    assert console.say("/story", first_text + second_text).startswith(first_text + second_text)
    assert console.say("/temp abc", texts.TEMP_INVALID.format(raw="abc")) == texts.TEMP_INVALID.format(raw="abc") + "\n"
    assert console.quit() == 0
    again = Console(tiny_model_dir, tmp_path / "db")  # a restart keeps the settings and the story
    assert texts.TEMP_SHOWN.format(value=0.7) in again.say("/temp", texts.TEMP_SHOWN.format(value=0.7))
    assert again.say("/story", first_text + second_text).startswith(first_text + second_text)
    assert a_part_of(again.say("/continue", BUTTONS)[: -len(BUTTONS) - 2], 50), "the state is rebuilt from the story"
    assert again.quit() == 0
    assert "Traceback" not in "".join(console.err + again.err)


def test_console_on_a_full_disk_says_so_and_goes_on(tiny_model_dir, tmp_path):
    console = Console(tiny_model_dir, tmp_path / "db")
    console.say("/temp 0.7", texts.TEMP_SET.format(value=0.7))
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.prlimit(console.proc.pid, resource.RLIMIT_FSIZE, (1, hard))  # no file of its own may grow
    console.say("/temp 1.2", texts.STORAGE_FAILED)
    console.say("/temp", texts.TEMP_SHOWN.format(value=0.7))
    resource.prlimit(console.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))
    console.say("/temp 0.9", texts.TEMP_SET.format(value=0.9))
    assert console.quit() == 0
    log = "".join(console.err)
    assert re.search(r"database write failed.*(disk is full|disk I/O error)", log) and "Traceback" not in log


def test_console_book_lists_chooses_and_auto_says_which_novel(tiny_world_run, tmp_path):
    console = Console(tiny_world_run / "saved_model", tmp_path / "db")
    console.say("/len 50", texts.LEN_SET.format(value=50))
    assert "《天龙》" in console.say("/book", "可选")
    console.say("/book 红楼梦", "没有改变")
    console.say("/book 天龙", texts.book_set("天龙"))
    chosen = console.say("/write 郭靖", BUTTONS)
    assert chosen.startswith("郭靖"), "a chosen novel is not announced"
    console.say("/book auto", texts.book_set("auto"))
    picked = console.say("/write 郭靖对黄蓉说", BUTTONS)
    assert picked.startswith(texts.book_picked("射雕") + "\n郭靖对黄蓉说")
    assert console.quit() == 0
    assert "Traceback" not in "".join(console.err)


def test_a_failed_generation_round_gets_the_apology_and_the_console_goes_on(tiny_model_dir, tmp_path):
    import asyncio
    import io
    from pathlib import Path

    from bot.config import load_config
    from bot.console import run_console
    from model import load

    class FailsOnce:
        """The tiny model, whose first generation round fails."""
        def __init__(self, model):
            self.model, self.failed = model, False

        def generate(self, *args, **kwargs):
            if not self.failed:
                self.failed = True
                raise RuntimeError("a round failed")
            return self.model.generate(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.model, name)

    config = load_config(env={"DATABASE_PATH": str(tmp_path / "db")}, dotenv=Path("/nonexistent"), need_token=False)
    out = io.StringIO()
    asyncio.run(run_console(config, FailsOnce(load(tiny_model_dir)), stdin=io.StringIO("/write 乔峰\n/write 阿朱\n"),
                            stdout=out))
    printed = out.getvalue()
    assert texts.APOLOGY in printed and BUTTONS in printed  # the first failed, the second was written


def test_a_line_of_ones_own_joins_the_console_story(tiny_model_dir, tmp_path):
    console = Console(tiny_model_dir, tmp_path / "db")
    console.say("/len 50", texts.LEN_SET.format(value=50))
    first = console.say("/write 段誉", BUTTONS)[: -len(BUTTONS) - 2]
    after = console.say("段誉拔剑而起", BUTTONS)[: -len(BUTTONS) - 2]
    assert a_part_of(after, 50)  # the bot's part after the line (the line itself was typed, not echoed)
    assert console.say("/story", after).startswith(joined(first, "段誉拔剑而起") + after)
    assert console.quit() == 0


def test_console_choices_are_numbered_and_typed(tiny_model_dir, tmp_path):
    console = Console(tiny_model_dir, tmp_path / "db")
    console.say("/len 50", texts.LEN_SET.format(value=50))
    assert console.say("4", texts.NO_CHOICE)  # no choices yet: a number is not taken as a line
    console.say("/choices on", texts.choices_set(True))
    shown = console.say("/write 段誉", "]")
    text, _, listed = shown.partition("\n\n下一步？\n")
    beats = [line[2:] for line in listed.split("\n[")[0].split("\n")]
    assert 1 <= len(beats) <= 3 and f"选一个: {' / '.join(str(i + 1) for i in range(len(beats)))}]" in listed
    after = console.say("1", "]")  # the first beat joins, and the bot goes on from it
    assert " ".join(after.split()).startswith(beats[0])
    story = console.say("/story", "段誉")  # the same text, but for line breaks and a leading ”
    bare = lambda s: "".join(c for c in s if not c.isspace() and c != "”")  # noqa: E731
    assert bare(story).startswith(bare(text + after.partition("\n\n下一步？")[0]))
    assert console.quit() == 0


def test_a_part_cut_before_a_played_character_speaks_prints_only_what_it_keeps():
    """The console cannot take printed text back: a growing part's last characters wait until it is whole."""
    import asyncio
    import io

    from bot.console import ConsoleOutput
    from bot.part import Part

    out = io.StringIO()
    view = ConsoleOutput(out).part_view()
    kept = "木婉清道：“快取解药来，你怎么到这里来了？”" * 3

    async def go():
        await view.update(kept)
        await view.update(kept + "段誉心中一凛")  # it grows into 段誉's line…
        await view.finish(kept, Part(0, 1, 0, "", ""))  # …and stops before it: his turn

    asyncio.run(go())
    assert out.getvalue().startswith(kept + "\n") and "段誉" not in out.getvalue()
