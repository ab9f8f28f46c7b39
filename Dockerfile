# The bot with the shipped model, as a non-root user; stories and settings on a volume.
#
#   docker build -t jinyong-bot .
#   docker run -d --env-file .env -v jinyong-data:/data jinyong-bot      # or: docker compose up -d
#
# BASE is any image with Python >= 3.10 and its venv module (python:3.11-slim; Debian 12 with
# python3-venv works too: `--build-arg BASE=…`).
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/bot.sqlite3

# The code and the shipped model (model/default, ~33 MB) go into a virtual environment of their own.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY train ./train
COPY model ./model
COPY bot ./bot
COPY bench ./bench
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install . \
    && rm -rf /src

# Not root: the bot owns only its database folder.
RUN useradd --create-home --uid 10001 bot \
    && mkdir -p /data && chown bot:bot /data && chmod 700 /data
USER bot
WORKDIR /home/bot
VOLUME ["/data"]
ENV PATH=/opt/venv/bin:$PATH

# Healthy while the Bot API answers getMe with this token (through TELEGRAM_PROXY, if set).
HEALTHCHECK --interval=60s --timeout=20s --start-period=60s --retries=3 CMD ["python", "-m", "bot", "--check"]

# The token and every other setting come from the environment (.env.example lists them).
CMD ["python", "-m", "bot"]
