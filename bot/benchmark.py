"""Generation speed: the notebook's per-character loop against our batched scheduler.

    python -m bot.benchmark [--model DIR] [--length 300] [--chats 32] [--idle-chats 1000]

On one model, in one run, it measures
  (a) the notebook-style loop: one compiled one-character step per Python call, one prompt;
  (b) our generator through the bot's scheduler, one chat;
  (c) the same scheduler with --chats chats writing at once (not through Telegram);
then the process's memory with --idle-chats chats holding a GRU state. It prints a
table and, last, `RESULT {json}` with seed_loop_cps, single_cps, concurrent32_cps,
single_vs_seed, concurrent32_vs_seed, p95_first_text_s, rss_mb and more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time

import numpy as np

from bot.engine import ChatSession
from bot.scheduler import Scheduler, SchedulerConfig

PROMPTS = ["乔峰带阿朱", "段誉", "郭靖", "黄蓉笑道", "令狐冲", "张无忌", "杨过", "韦小宝"]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def notebook_loop(m, prompt: str, length: int, temperature: float) -> float:
    """The tutorial's OneStep loop, as written there: a Keras model (Embedding → GRU layers with
    return_state → Dense) called inside a tf.function that takes and returns strings, once per
    character, with our model's weights (float32). Returns chars/s."""
    import os  # noqa: PLC0415

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    arch, weights = m.card["architecture"], m.weights()
    if arch["cell"] != "gru":
        raise SystemExit("the notebook baseline is a GRU model")
    chars = m.chars()
    embedding = keras.layers.Embedding(len(chars), arch["embedding_dim"])
    grus = [keras.layers.GRU(arch["units"], return_sequences=True, return_state=True) for _ in weights["rnn"]]
    dense = keras.layers.Dense(len(chars))
    x = embedding(np.zeros((1, 1), np.int32))
    for gru, w in zip(grus, weights["rnn"]):
        x, _ = gru(x)
        gru.set_weights([w["kernel"].astype(np.float32), w["recurrent"].astype(np.float32),
                         w["bias"].astype(np.float32)])
    dense(x)
    embedding.set_weights([weights["embedding"].astype(np.float32)])
    dense.set_weights([weights["dense_kernel"].astype(np.float32), weights["dense_bias"].astype(np.float32)])
    ids_from_chars = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(chars[1:]), tf.range(1, len(chars), dtype=tf.int64)), 0)
    vocab = tf.constant(chars)
    prediction_mask = tf.constant(np.where(np.arange(len(chars)) == 0, -np.inf, 0.0).astype(np.float32))

    @tf.function
    def generate_one_step(inputs, states):
        input_ids = ids_from_chars.lookup(tf.strings.unicode_split(inputs, "UTF-8")).to_tensor()
        x = embedding(input_ids)
        new_states = []
        for gru, state in zip(grus, states):
            x, state = gru(x, initial_state=state)
            new_states.append(state)
        logits = dense(x)[:, -1, :] / temperature + prediction_mask
        predicted = tf.squeeze(tf.random.categorical(logits, num_samples=1), axis=-1)
        return tf.gather(vocab, predicted), new_states

    states = [tf.zeros([1, arch["units"]]) for _ in grus]
    next_char, states = generate_one_step(tf.constant([prompt]), states)  # reads the prompt, as the tutorial does
    generate_one_step(next_char, states)  # trace outside the timing
    t0 = time.perf_counter()
    out = []
    for _ in range(length):
        next_char, states = generate_one_step(next_char, states)
        out.append(next_char[0].numpy().decode("utf-8"))
    return length / (time.perf_counter() - t0)


async def through_scheduler(m, n_chats: int, length: int, temperature: float, config: SchedulerConfig) -> dict:
    """n_chats start at once; returns chars/s over the whole run and first/final text latencies."""
    sched = Scheduler(m, config)
    sched.start()
    zero = m.initial_state(1)
    # Warm up: trace the batch shapes this run will use.
    warm = [sched.submit(PROMPTS[i % len(PROMPTS)], zero, config.first_chunk + config.chunk, temperature)
            for i in range(n_chats)]
    for job in warm:
        async for _ in sched.stream(job):
            pass
    first, final = [], []

    async def chat(i: int, t0: float):
        job = sched.submit(PROMPTS[i % len(PROMPTS)], zero, length, temperature)
        got = 0
        async for piece in sched.stream(job):
            if got == 0:
                first.append(time.perf_counter() - t0)
            got += len(piece)
        final.append(time.perf_counter() - t0)
        return got

    t0 = time.perf_counter()
    counts = await asyncio.gather(*(chat(i, t0) for i in range(n_chats)))
    wall = time.perf_counter() - t0
    await sched.stop()
    return {"cps": sum(counts) / wall, "first": first, "final": final, "rounds": sched.rounds}


def p(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bot.benchmark", description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="SavedModel directory (default: the shipped model)")
    ap.add_argument("--length", type=int, default=300, help="characters each chat generates")
    ap.add_argument("--chats", type=int, default=32, help="chats writing at once in (c)")
    ap.add_argument("--idle-chats", type=int, default=1000, help="chats holding a state for the memory figure")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--repeats", type=int, default=3, help="runs of (a) and (b), alternating; medians reported")
    args = ap.parse_args(argv)
    from model import load  # noqa: PLC0415

    m = load(args.model)
    config = SchedulerConfig(max_batch=max(32, args.chats), max_jobs=max(64, 2 * args.chats))
    # (a) and (b) alternate and each takes its median over --repeats runs: this machine is noisy.
    seeds, singles = [], []
    for _ in range(args.repeats):
        seeds.append(notebook_loop(m, PROMPTS[0], args.length, args.temperature))
        singles.append(asyncio.run(through_scheduler(m, 1, args.length, args.temperature, config)))
    seed_cps = float(np.median(seeds))
    single = sorted(singles, key=lambda r: r["cps"])[len(singles) // 2]
    many = asyncio.run(through_scheduler(m, args.chats, args.length, args.temperature, config))
    sessions = {i: ChatSession(version=1, states=np.random.rand(m.num_states, 1, m.units).astype(np.float32))
                for i in range(args.idle_chats)}
    memory = rss_mb()
    rows = [("(a) notebook loop, 1 prompt", seed_cps, 1.0, float("nan")),
            ("(b) scheduler, 1 chat", single["cps"], single["cps"] / seed_cps, single["first"][0]),
            (f"(c) scheduler, {args.chats} chats", many["cps"], many["cps"] / seed_cps, p(many["first"], 95))]
    runs_a = " ".join(f"{x:.0f}" for x in seeds)
    runs_b = " ".join(f"{r['cps']:.0f}" for r in singles)
    print(f"model {m.path} ({m.card.get('name')}), {args.length} chars per chat, {platform.machine()}; "
          f"runs of (a): {runs_a} chars/s, of (b): {runs_b} chars/s")
    print(f"{'':32} {'chars/s':>9} {'vs (a)':>7} {'first text s':>13}")
    for name, cps, ratio, first in rows:
        print(f"{name:32} {cps:9.0f} {ratio:7.2f} {first:13.3f}")
    print(f"(c) final text p50 {p(many['final'], 50):.2f} s, p95 {p(many['final'], 95):.2f} s; "
          f"{many['rounds']} model calls; RSS with {len(sessions)} chats holding states: {memory:.0f} MB")
    result = {"seed_loop_cps": round(seed_cps, 1), "single_cps": round(single["cps"], 1),
              "concurrent32_cps": round(many["cps"], 1), "single_vs_seed": round(single["cps"] / seed_cps, 2),
              "concurrent32_vs_seed": round(many["cps"] / seed_cps, 2),
              "first_text_single_s": round(single["first"][0], 3),
              "p95_first_text_s": round(p(many["first"], 95), 3), "p50_final_text_s": round(p(many["final"], 50), 3),
              "p95_final_text_s": round(p(many["final"], 95), 3), "rss_mb": round(memory, 1),
              "chats": args.chats, "idle_chats": len(sessions), "length": args.length,
              "model": m.card.get("name")}
    print("RESULT " + json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
