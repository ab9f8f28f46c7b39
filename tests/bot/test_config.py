"""Settings from the environment and .env, and logs that never carry the token."""

import logging
import re
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, read_dotenv
from bot.logs import RedactingFormatter
from tests.bot.fake_telegram import TOKEN
from tests.conftest import ROOT


def test_env_example_documents_every_variable():
    example = read_dotenv(ROOT / ".env.example")
    source = (ROOT / "bot" / "config.py").read_text()
    used = set(re.findall(r'"([A-Z][A-Z_]+)"', source)) - {"INFO"}
    assert used <= set(example), f"undocumented: {used - set(example)}"
    cfg = load_config(env={**example, "TELEGRAM_BOT_TOKEN": TOKEN}, dotenv=Path("/nonexistent"))
    assert cfg.model_dir is None and cfg.limits.user_requests_per_minute == 20
    assert cfg.runtime == "int8"
    assert load_config(env={"TELEGRAM_BOT_TOKEN": TOKEN, "RUNTIME": "Float32"}, dotenv=Path("/nonexistent")).runtime \
        == "float32"


def test_dotenv_values_and_environment_precedence(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f'# comment\nexport TELEGRAM_BOT_TOKEN="{TOKEN}"\nALLOWED_USER_IDS=1, 2 ,3\n'
                        'MAX_BATCH=8 # note\n')
    cfg = load_config(env={"MAX_BATCH": "4"}, dotenv=env_file)
    assert cfg.token == TOKEN and cfg.allowed_user_ids == {1, 2, 3} and cfg.max_batch == 4
    assert TOKEN not in repr(cfg)


@pytest.mark.parametrize("env,message", [
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "ALLOWED_USER_IDS": "12,abc"}, "ALLOWED_USER_IDS"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "MAX_JOBS": "0"}, "MAX_JOBS must be at least 1"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_BASE_URL": "ftp://x"}, "TELEGRAM_BASE_URL"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_TIMEOUT": "0"}, "TELEGRAM_TIMEOUT"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "LOG_LEVEL": "DEBGU"}, "LOG_LEVEL must be one of DEBUG, INFO"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "LOG_LEVEL": "root"}, "not 'root'"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "RUNTIME": "fp16"}, "RUNTIME must be int8 or float32, not 'fp16'"),
])
def test_bad_settings_are_named(env, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config(env=env, dotenv=Path("/nonexistent"))
    assert TOKEN not in str(e.value)


def test_formatter_hides_the_token_in_messages_and_tracebacks():
    fmt = RedactingFormatter("%(levelname)s %(message)s", [TOKEN])
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/sendMessage failed")
    except RuntimeError:
        import sys

        record = logging.LogRecord("httpx", logging.DEBUG, __file__, 1, "url %s", (f"/bot{TOKEN}/getMe",),
                                   sys.exc_info())
    text = fmt.format(record)
    assert TOKEN not in text and text.count("<TOKEN>") == 2


@pytest.mark.parametrize("env,message", [
    ({"TELEGRAM_PROXY": "ftp://proxy:21"}, "TELEGRAM_PROXY must start with http://"),
    ({"WEBHOOK_URL": "bot.example.com/hook"}, "WEBHOOK_URL must start with https://"),
    ({"WEBHOOK_LISTEN": "8443"}, "WEBHOOK_LISTEN must be host:port"),
    ({"WEBHOOK_LISTEN": "0.0.0.0:99999"}, "WEBHOOK_LISTEN must be host:port"),
    ({"WEBHOOK_SECRET": "has spaces"}, "WEBHOOK_SECRET must be 1 to 256 letters"),
    ({"TELEGRAM_MESSAGES_PER_SECOND": "0"}, "TELEGRAM_MESSAGES_PER_SECOND must be at least 1"),
])
def test_bad_deployment_settings_are_named(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env={"TELEGRAM_BOT_TOKEN": TOKEN, **env}, dotenv=Path("/nonexistent"))


def test_deployment_settings_and_what_logs_must_hide():
    cfg = load_config(env={"TELEGRAM_BOT_TOKEN": TOKEN, "WEBHOOK_URL": "https://bot.example.com/tg",
                           "WEBHOOK_LISTEN": "[::1]:8443", "WEBHOOK_SECRET": "abc_DEF-1",
                           "TELEGRAM_PROXY": "socks5://me:hunter2@10.0.0.1:1080"}, dotenv=Path("/nonexistent"))
    assert cfg.webhook_listen == ("::1", 8443) and cfg.webhook_url == "https://bot.example.com/tg"
    assert cfg.secrets() == [TOKEN, "abc_DEF-1", "hunter2"]
    assert "hunter2" not in repr(cfg) and "abc_DEF-1" not in repr(cfg)
