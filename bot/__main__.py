"""Run the 金庸体 story bot.

    python -m bot              # Telegram: TELEGRAM_BOT_TOKEN in .env or the environment
    python -m bot --console    # the same commands in this terminal, no token needed
    python -m bot --check      # exit 0 if the Bot API answers with this token now, else 1 (health check)

Settings come from environment variables and .env (see .env.example).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sqlite3
import sys
from pathlib import Path

from bot.config import BotConfig, ConfigError, load_config
from bot.logs import setup_logging


def preflight(config: BotConfig):
    """Fail with one line on a model or database the bot could not use; returns (the loaded model, the
    database's lock). The lock is taken here and held until the bot exits: two bots started together
    cannot both pass this check.

    The cheap checks come first, so their errors print before TensorFlow (and its chatter) loads.
    """
    from bot.resources import load_model  # noqa: PLC0415
    from bot.store import Store, connect  # noqa: PLC0415
    from model import check_model_dir  # noqa: PLC0415
    from model.artifact import DEFAULT_MODEL_DIR  # noqa: PLC0415

    check_model_dir(config.model_dir or DEFAULT_MODEL_DIR)

    lock_fd = Store.take_lock(config.database_path)

    async def probe():
        await (await connect(Path(config.database_path))).close()

    try:
        asyncio.run(probe())
        return load_model(config), lock_fd
    except BaseException:
        os.close(lock_fd)
        raise


def health_check(env_file: Path) -> int:
    """One getMe with the bot's settings; one line on stdout, exit status 0 if it answered."""
    from bot.startup import check_api  # noqa: PLC0415

    try:
        config = load_config(dotenv=env_file, need_token=True)
    except ConfigError as e:
        print(f"unhealthy: {e}")
        return 1
    ok, said = asyncio.run(check_api(config))
    print(f"{'healthy' if ok else 'unhealthy'}: {said}")
    return 0 if ok else 1


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bot", description=__doc__.split("\n")[0])
    ap.add_argument("--console", action="store_true", help="talk to the bot in this terminal instead of Telegram")
    ap.add_argument("--env-file", type=Path, default=Path(".env"), help="settings file (default .env)")
    ap.add_argument("--check", action="store_true",
                    help="only ask the Bot API once (getMe): exit 0 if it answers, 1 if not (a health check)")
    args = ap.parse_args(argv)
    if args.check:
        return health_check(args.env_file)
    from bot.store import StoreError  # noqa: PLC0415
    from model import ModelError  # noqa: PLC0415

    try:
        config = load_config(dotenv=args.env_file, need_token=not args.console)
        setup_logging(config.log_level, secrets=config.secrets())
        model, lock_fd = preflight(config)
    except (ConfigError, ModelError, StoreError, sqlite3.Error) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.console:
        from bot.console import run_console  # noqa: PLC0415

        asyncio.run(run_console(config, model, lock_fd=lock_fd))
        return 0
    from telegram.ext import Application  # noqa: PLC0415

    from bot.startup import wait_for_api  # noqa: PLC0415
    from bot.telegram_app import build_application, run  # noqa: PLC0415

    log = logging.getLogger(__name__)
    log.info("starting; Bot API at %s", config.base_url)
    signal.signal(signal.SIGTERM, _interrupt)  # until run_polling installs its own handlers
    try:
        username = asyncio.run(wait_for_api(config))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    log.info("Bot API reachable: @%s", username)
    from telegram.error import InvalidToken  # noqa: PLC0415

    app: Application = build_application(config, model, lock_fd)
    try:
        run(app, config)
    except InvalidToken:  # revoked after the start-up check; PTB's message would quote the token
        print(f"error: the Bot API at {config.base_url} refused TELEGRAM_BOT_TOKEN; check the token from "
              "@BotFather", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
