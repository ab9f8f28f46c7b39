"""Waiting for the Bot API at start-up: retry with backoff while it is unreachable, stop on a bad token."""

from __future__ import annotations

import asyncio
import logging

import httpx

from bot.config import BotConfig, ConfigError

log = logging.getLogger(__name__)


async def wait_for_api(config: BotConfig, max_delay: float = 30.0) -> str:
    """getMe until it answers; returns the bot's username. Raises ConfigError if the token is refused."""
    url = f"{config.base_url}{config.token}/getMe"
    delay = 1.0
    async with httpx.AsyncClient(timeout=config.timeout, proxy=config.proxy or None) as client:
        while True:
            try:
                r = await client.post(url)
                if r.status_code in (401, 404):
                    raise ConfigError(f"the Bot API at {config.base_url} refused TELEGRAM_BOT_TOKEN "
                                      f"({r.status_code}); check the token from @BotFather")
                data = r.json()
                if data.get("ok"):
                    return data["result"].get("username", "")
                reason = f"HTTP {r.status_code}: {data.get('description', '')}"
            except (httpx.HTTPError, ValueError) as e:
                reason = type(e).__name__  # never str(e): it can hold the URL, and so the token
            log.warning("Bot API at %s unreachable (%s); trying again in %.0f s", config.base_url, reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
