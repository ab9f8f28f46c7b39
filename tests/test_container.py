"""The container's files say what docs/container.md promises (`python -m bench.container` runs the image)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_dockerfile_runs_the_bot_as_a_user_with_its_database_on_a_volume_and_a_health_check():
    text = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^VOLUME \[\"/data\"\]", text, re.M) and "DATABASE_PATH=/data/" in text
    assert re.search(r'^HEALTHCHECK .*CMD \["python", "-m", "bot", "--check"\]', text, re.M)
    assert re.search(r'^CMD \["python", "-m", "bot"\]', text, re.M)
    copied = set(re.findall(r"^COPY (\S+)", text, re.M))
    assert {"train", "model", "bot", "pyproject.toml"} <= copied  # model/ holds the shipped model
    assert "TELEGRAM_BOT_TOKEN" not in text  # the token comes from the environment, never the image


def test_compose_builds_the_image_with_settings_from_env_and_a_named_volume():
    text = (ROOT / "compose.yaml").read_text()
    assert "build: ." in text and "env_file: .env" in text
    assert re.search(r"^\s+- data:/data$", text, re.M) and re.search(r"^volumes:\n\s+data:", text, re.M)
