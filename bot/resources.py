"""Opening and closing what the bot runs on: the model, the scheduler, the database."""

from __future__ import annotations

import logging

from bot.config import BotConfig
from bot.engine import StoryEngine
from bot.limits import Limits
from bot.scheduler import Scheduler, SchedulerConfig
from bot.store import Store

log = logging.getLogger(__name__)


def load_model(config: BotConfig):
    """Load the model and trace its functions (raises model.ModelError with a readable message)."""
    from model import load  # noqa: PLC0415  (TensorFlow: slow to import)

    m = load(config.model_dir, config.runtime, weight_bits=config.int8_weight_bits)
    m.warm_up()
    log.info("model %s loaded (%s), runtime %s", m.path, m.card.name, m.runtime_form)
    return m


async def open_resources(config: BotConfig, model, lock_fd: int | None = None) -> dict:
    """{"engine": StoryEngine, "close": coroutine function} around a loaded model (see load_model);
    `lock_fd`: the database's lock if the start-up check took it already (Store.take_lock)."""
    store = await Store.open(config.database_path, lock_fd)
    scheduler = Scheduler(model, SchedulerConfig(max_batch=config.max_batch, max_jobs=config.max_jobs))
    scheduler.start()
    engine = StoryEngine(store, scheduler, prompt_limit=config.prompt_limit, limits=Limits(config.limits),
                         max_resident_chats=config.max_resident_chats)

    async def close() -> None:
        await scheduler.stop()
        await store.close()
        log.info("database closed")

    return {"engine": engine, "close": close}
