"""The Bot API at start-up: retry with backoff while it is unreachable, stop on a bad token; and the
container's health check (`python -m bot --check`: one getMe)."""

from __future__ import annotations

import asyncio
import logging

import httpx

from bot.config import BotConfig, ConfigError

log = logging.getLogger(__name__)


async def get_me(client: httpx.AsyncClient, config: BotConfig) -> tuple[str | None, str]:
    """One getMe: (the bot's username, "") if it answered, else (None, why: never the URL, which holds
    the token). Raises ConfigError if the token is refused."""
    try:
        r = await client.post(f"{config.base_url}{config.token}/getMe")
        if r.status_code in (401, 404):
            raise ConfigError(f"the Bot API at {config.base_url} refused TELEGRAM_BOT_TOKEN "
                              f"({r.status_code}); check the token from @BotFather")
        data = r.json()
        if data.get("ok"):
            return data["result"].get("username", ""), ""
        return None, f"HTTP {r.status_code}: {data.get('description', '')}"
    except (httpx.HTTPError, ValueError) as e:
        return None, type(e).__name__  # never str(e): it can hold the URL, and so the token


async def wait_for_api(config: BotConfig, max_delay: float = 30.0) -> str:
    """getMe until it answers; returns the bot's username. Raises ConfigError if the token is refused."""
    delay = 1.0
    async with httpx.AsyncClient(timeout=config.timeout, proxy=config.proxy or None) as client:
        while True:
            username, reason = await get_me(client, config)
            if username is not None:
                return username
            log.warning("Bot API at %s unreachable (%s); trying again in %.0f s", config.base_url, reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


async def check_api(config: BotConfig, timeout: float = 15.0) -> tuple[bool, str]:
    """The health check: (True, "@username") if the Bot API answers getMe now, else (False, why)."""
    async with httpx.AsyncClient(timeout=min(timeout, config.timeout), proxy=config.proxy or None) as client:
        try:
            username, reason = await get_me(client, config)
        except ConfigError as e:
            return False, str(e)
    return (True, f"@{username}") if username is not None else (False, f"Bot API at {config.base_url} "
                                                                      f"unreachable ({reason})")
