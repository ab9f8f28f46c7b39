"""The Telegram bot: python -m bot (see bot/__main__.py)."""
