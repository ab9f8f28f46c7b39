"""Opening and closing what the bot runs on: the model, the scheduler, the database."""

from __future__ import annotations

import asyncio
import logging

from bot.config import BotConfig
from bot.engine import StoryEngine
from bot.limits import Limits
from bot.scheduler import Scheduler, SchedulerConfig
from bot.store import Store

log = logging.getLogger(__name__)


async def open_resources(config: BotConfig) -> dict:
    """{"engine": StoryEngine, "close": coroutine function} — the model loads off the event loop."""
    from model import load  # noqa: PLC0415  (TensorFlow: slow to import)

    def load_and_warm():
        m = load(config.model_dir)
        m.warm_up()
        return m

    model = await asyncio.get_running_loop().run_in_executor(None, load_and_warm)
    log.info("model %s loaded (%s)", model.path, model.card.get("name"))
    store = await Store.open(config.database_path)
    scheduler = Scheduler(model, SchedulerConfig(max_batch=config.max_batch, max_jobs=config.max_jobs))
    scheduler.start()
    engine = StoryEngine(store, scheduler, prompt_limit=config.prompt_limit, limits=Limits(config.limits))

    async def close() -> None:
        await scheduler.stop()
        await store.close()
        log.info("database closed")

    return {"engine": engine, "close": close}
