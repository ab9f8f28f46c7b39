"""Speed benchmarks, kept apart from the bot they measure.

    python -m bench.speed       the bot's generation: notebook baseline, 1 chat, N chats, roofline, memory
    python -m bench.runtimes    one step on each runtime we measured (TensorFlow, ONNX Runtime, TFLite)
    python -m bench.chats       memory after many distinct chats each wrote once
    python -m bench.load        many chats and groups through real HTTP (the tests' fake Bot API, with
                                Telegram's flood limits, and the bot as a subprocess)

Each prints its figures and, last, one line `RESULT {json}` for scripts (`result_line`).
"""

import json


def result_line(result: dict) -> int:
    """Print the machine-readable last line, `RESULT {json}`; the exit status (0)."""
    print("RESULT " + json.dumps(result, ensure_ascii=False))
    return 0
