"""Speed benchmarks, kept apart from the bot they measure.

    python -m bench.speed       the bot's generation: notebook baseline, 1 chat, N chats, roofline, memory
    python -m bench.runtimes    one step on each runtime we measured (TensorFlow, ONNX Runtime, TFLite)

The load test through real HTTP is `python -m tests.bot.loadtest` (it needs the tests' fake Bot API).
"""
