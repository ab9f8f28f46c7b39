"""The bot's settings, from environment variables and an optional .env file (see .env.example)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bot.choices import CHOICE_SECONDS
from bot.engine import MAX_RESIDENT_CHATS
from bot.limits import LimitConfig
from bot.logs import LOG_LEVELS
from bot.scheduler import SchedulerConfig
from model.artifact import RUNTIMES
from model.int8 import parse_weight_bits

TOKEN_PATTERN = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{30,}$")  # what @BotFather hands out


PROXY_SCHEMES = ("http://", "https://", "socks5://", "socks5h://")
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what Telegram accepts as a webhook's secret_token


class ConfigError(Exception):
    """A setting that cannot work; the message names it (never its secret value)."""


@dataclass
class BotConfig:
    token: str = ""  # TELEGRAM_BOT_TOKEN, from @BotFather (not needed for --console)
    base_url: str = "https://api.telegram.org/bot"  # TELEGRAM_BASE_URL, a self-hosted Bot API server's URL
    proxy: str = ""  # TELEGRAM_PROXY, http(s):// or socks5:// proxy for every Bot API request; "" = none
    webhook_url: str = ""  # WEBHOOK_URL, public URL Telegram posts updates to; "" = long polling
    webhook_listen: tuple[str, int] = ("127.0.0.1", 8443)  # WEBHOOK_LISTEN, host:port the webhook server binds
    webhook_secret: str = ""  # WEBHOOK_SECRET, checked on every update; "" = a random one per start
    model_dir: Path | None = None  # MODEL_DIR; None = the shipped default model
    runtime: str = "int8"  # RUNTIME: int8 (8-bit weights, fast) or float32 (the SavedModel's exact graph)
    int8_weight_bits: int | None = None  # INT8_WEIGHT_BITS: 8 or 7, the batched int8 kernel's weights; None: the CPU's
    database_path: Path = Path("data/bot.sqlite3")  # DATABASE_PATH
    allowed_user_ids: frozenset[int] = field(default_factory=frozenset)  # ALLOWED_USER_IDS; empty = everyone
    prompt_limit: int = 500  # PROMPT_LIMIT, characters of a /write prompt used (longer: the tail)
    max_batch: int = SchedulerConfig.max_batch  # MAX_BATCH, chats generating together in one model call
    max_jobs: int = SchedulerConfig.max_jobs  # MAX_JOBS, generations in flight before "busy, try again"
    max_resident_chats: int = MAX_RESIDENT_CHATS  # MAX_RESIDENT_CHATS, chats whose state stays in memory
    log_level: str = "INFO"  # LOG_LEVEL
    timeout: float = 30.0  # TELEGRAM_TIMEOUT, seconds to wait for one Bot API answer
    messages_per_second: int = 27  # TELEGRAM_MESSAGES_PER_SECOND, sends and edits in all (Telegram's 30, less 10 %)
    group_messages_per_minute: int = 18  # TELEGRAM_GROUP_MESSAGES_PER_MINUTE, into one group (Telegram's 20, less 10 %)
    choice_seconds: int = CHOICE_SECONDS  # CHOICE_SECONDS, how long a group's vote on the next beat stays open
    limits: LimitConfig = field(default_factory=LimitConfig)  # RATE_* and CHARS_* variables

    def secrets(self) -> list[str]:
        """What logs must never show: the token, the webhook's secret, the proxy's password."""
        return [s for s in (self.token, self.webhook_secret, urlsplit(self.proxy).password) if s]

    def __repr__(self) -> str:  # never print the token
        return f"BotConfig(base_url={self.base_url!r}, model_dir={self.model_dir}, db={self.database_path})"


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; '#' comments, blank lines, 'export ' and surrounding quotes allowed."""
    values = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        values[key.strip()] = value
    return values


def load_config(env: dict[str, str] | None = None, dotenv: Path = Path(".env"), need_token: bool = True) -> BotConfig:
    """Environment variables win over .env; raises ConfigError for unusable values."""
    values = {**read_dotenv(dotenv), **(os.environ if env is None else env)}
    get = lambda k: (values.get(k) or "").strip()  # noqa: E731
    cfg = BotConfig()
    cfg.token = get("TELEGRAM_BOT_TOKEN")
    if need_token:
        if not cfg.token:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set: put the token from @BotFather in .env "
                              "(see .env.example), or try the bot with python -m bot --console")
        if not TOKEN_PATTERN.match(cfg.token):
            raise ConfigError("TELEGRAM_BOT_TOKEN is malformed: it looks like 123456789:AA... (digits, a colon, "
                              "then 30 or more letters, digits, - or _)")
    if get("TELEGRAM_BASE_URL"):
        cfg.base_url = get("TELEGRAM_BASE_URL")
        if not cfg.base_url.startswith(("http://", "https://")):
            raise ConfigError("TELEGRAM_BASE_URL must start with http:// or https://")
    if get("MODEL_DIR"):
        cfg.model_dir = Path(get("MODEL_DIR"))
    if get("TELEGRAM_PROXY"):
        cfg.proxy = get("TELEGRAM_PROXY")
        if not cfg.proxy.startswith(PROXY_SCHEMES):
            raise ConfigError(f"TELEGRAM_PROXY must start with {', '.join(PROXY_SCHEMES)}")
    if get("WEBHOOK_URL"):
        cfg.webhook_url = get("WEBHOOK_URL")
        if not cfg.webhook_url.startswith(("https://", "http://")):
            raise ConfigError("WEBHOOK_URL must start with https:// (Telegram posts only to HTTPS)")
    if get("WEBHOOK_LISTEN"):
        host, _, port = get("WEBHOOK_LISTEN").rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError("WEBHOOK_LISTEN must be host:port, e.g. 127.0.0.1:8443")
        cfg.webhook_listen = (host.strip("[]"), int(port))
    if get("WEBHOOK_SECRET"):
        cfg.webhook_secret = get("WEBHOOK_SECRET")
        if not SECRET_PATTERN.match(cfg.webhook_secret):
            raise ConfigError("WEBHOOK_SECRET must be 1 to 256 letters, digits, _ or -")
    if get("RUNTIME"):
        cfg.runtime = get("RUNTIME").lower()
        if cfg.runtime not in RUNTIMES:
            raise ConfigError(f"RUNTIME must be {' or '.join(RUNTIMES)}, not {get('RUNTIME')!r}")
    if get("INT8_WEIGHT_BITS"):
        try:
            cfg.int8_weight_bits = parse_weight_bits(get("INT8_WEIGHT_BITS"))
        except ValueError:
            given = get("INT8_WEIGHT_BITS")
            raise ConfigError(f"INT8_WEIGHT_BITS must be 7 or 8 (empty: by the CPU), not {given!r}") from None
    if get("DATABASE_PATH"):
        cfg.database_path = Path(get("DATABASE_PATH"))
    if get("ALLOWED_USER_IDS"):
        try:
            cfg.allowed_user_ids = frozenset(int(x) for x in get("ALLOWED_USER_IDS").split(",") if x.strip())
        except ValueError:
            raise ConfigError("ALLOWED_USER_IDS must be numeric Telegram user ids separated by commas") from None
    numbers = [("PROMPT_LIMIT", cfg, "prompt_limit"), ("MAX_BATCH", cfg, "max_batch"), ("MAX_JOBS", cfg, "max_jobs"),
               ("MAX_RESIDENT_CHATS", cfg, "max_resident_chats"), ("CHOICE_SECONDS", cfg, "choice_seconds"),
               ("TELEGRAM_MESSAGES_PER_SECOND", cfg, "messages_per_second"),
               ("TELEGRAM_GROUP_MESSAGES_PER_MINUTE", cfg, "group_messages_per_minute"),
               ("RATE_USER_PER_MIN", cfg.limits, "user_requests_per_minute"),
               ("RATE_GLOBAL_PER_MIN", cfg.limits, "global_requests_per_minute"),
               ("CHARS_USER_PER_HOUR", cfg.limits, "user_chars_per_hour"),
               ("CHARS_GLOBAL_PER_HOUR", cfg.limits, "global_chars_per_hour")]
    for key, target, attr in numbers:
        if get(key):
            try:
                setattr(target, attr, int(get(key)))
            except ValueError:
                raise ConfigError(f"{key} must be a whole number") from None
            if getattr(target, attr) < 1:
                raise ConfigError(f"{key} must be at least 1")
    if get("TELEGRAM_TIMEOUT"):
        try:
            cfg.timeout = float(get("TELEGRAM_TIMEOUT"))
        except ValueError:
            raise ConfigError("TELEGRAM_TIMEOUT must be a number of seconds") from None
        if not 1 <= cfg.timeout <= 600:
            raise ConfigError("TELEGRAM_TIMEOUT must be between 1 and 600 seconds")
    if get("LOG_LEVEL"):
        cfg.log_level = get("LOG_LEVEL").upper()
        if cfg.log_level not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {get('LOG_LEVEL')!r}")
    return cfg
