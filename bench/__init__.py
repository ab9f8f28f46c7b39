"""Speed benchmarks, kept apart from the bot they measure.

    python -m bench.speed       the bot's generation: notebook baseline, 1 chat, N chats, roofline, memory
    python -m bench.runtimes    one step on each runtime we measured (TensorFlow, ONNX Runtime, TFLite)
    python -m bench.chats       memory after many distinct chats each wrote once

The load test through real HTTP is `python -m tests.bot.loadtest` (it needs the tests' fake Bot API).
Each prints its figures and, last, one line `RESULT {json}` for scripts (`result_line`).
"""

import json


def result_line(result: dict) -> int:
    """Print the machine-readable last line, `RESULT {json}`; the exit status (0)."""
    print("RESULT " + json.dumps(result, ensure_ascii=False))
    return 0
