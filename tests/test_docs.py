"""The README stays a user's page: short, the two set-up commands CI runs, every setting, links that lead somewhere."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_short_and_its_set_up_commands_are_what_ci_runs():
    assert len(README.splitlines()) <= 300
    setup = re.search(r"^## Set up.*?\n```\n(.*?)```", README, re.S | re.M).group(1).strip().splitlines()
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("python3 ")]
    assert setup == ci == ["python3 -m pip install -e '.[test]'", "python3 -m pytest"]
    assert README.index("## Set up") < README.index("## Write in the console") < README.index("## Run the bot")


def test_every_setting_the_bot_and_the_model_read_is_in_the_readme_and_env_example():
    source = (ROOT / "bot" / "config.py").read_text() + (ROOT / "model" / "int8.py").read_text()
    prefixes = "TELEGRAM|WEBHOOK|MAX|RATE|CHARS|CHOICE|MODEL|DATABASE|ALLOWED|PROMPT|RUNTIME|LOG|INT8"
    names = set(re.findall(rf'"((?:{prefixes})_?[A-Z_]*)"', source))
    assert {"TELEGRAM_BOT_TOKEN", "MAX_BATCH", "INT8_WEIGHT_BITS"} <= names
    example = (ROOT / ".env.example").read_text()
    assert [n for n in sorted(names) if f"`{n}`" not in README] == []
    assert [n for n in sorted(names) if f"{n}=" not in example] == []


def test_links_to_docs_lead_to_files_that_exist():
    pages = {ROOT / "README.md": README, **{p: p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md")}}
    broken = [(page.name, target) for page, text in pages.items()
              for target in re.findall(r"\]\(([^)#:]+)\)", text) if not (page.parent / target).exists()]
    assert broken == []
    assert {"design.md", "bot.md", "operations.md", "speed.md", "model.md", "training.md", "contract.md"} <= {
        p.name for p in (ROOT / "docs").glob("*.md")}
