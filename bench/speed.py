"""Generation speed of the bot's path against the tutorial's, and where it stands against the machine's caps.

    python -m bench.speed [--model DIR] [--runtime int8|float32] [--length 300] [--chats 32]
                          [--more-chats 64 128] [--idle-chats 1000] [--repeats 3]

In one run, on one model ((a) and (a') in a process of their own, so that TensorFlow's
busy thread pools do not slow what runs after them):
  (a)  the fixed baseline: the tutorial's model (Embedding 256 → GRU 1024 → Dense) in its loop;
  (a') the same loop with our model's weights (a bigger model slows it too: not the baseline);
  (b)  our generator through the bot's scheduler, one chat;
  (c)  the same scheduler with --chats chats writing at once (not through Telegram);
then --more-chats chats at the scheduler's default largest batch and with a batch as
large as the chats (how the default was chosen), the roofline (weights read and FLOPs
per character, this machine's streaming bandwidth and int8 GEMM rate, the fraction of
each cap (b) and (c) reach), and the memory of a fresh process set up as the bot with
--idle-chats chats holding a state. (a), (a') and (b) alternate, and (c) repeats, --repeats times: medians.
Prints a table and, last, `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import sys
import time

import numpy as np

from bench import result_line
from bench.notebook import NotebookLoop
from bench.roofline import measure_machine, per_char_costs
from bot.part import ChatSession
from bot.scheduler import Scheduler, SchedulerConfig
from model.weights import Weights

PROMPTS = ["乔峰带阿朱", "段誉", "郭靖", "黄蓉笑道", "令狐冲", "张无忌", "杨过", "韦小宝"]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def through_scheduler(m, n_chats: int, length: int, temperature: float, config: SchedulerConfig) -> dict:
    """n_chats start at once; chars/s over the whole run, and first/final text latencies (s)."""
    sched = Scheduler(m, config)
    sched.start()
    zero = m.initial_state(1)
    # Warm up: the batch shapes this run will use.
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


def run_chats(m, n: int, args, max_batch: int | None = None) -> dict:
    config = SchedulerConfig(max_jobs=max(SchedulerConfig.max_jobs, n))
    if max_batch:
        config.max_batch = max_batch
    return asyncio.run(through_scheduler(m, n, args.length, args.temperature, config))


_loops: dict[bool, NotebookLoop] = {}  # in the tutorial's process: its model, and ours, in its loop


def start_tutorial(chars: list[str], temperature: float, weights: Weights) -> None:
    _loops[False] = NotebookLoop(chars, temperature)
    _loops[True] = NotebookLoop(chars, temperature, weights)


def tutorial_cps(ours: bool, prompt: str, length: int) -> float:
    return _loops[ours].cps(prompt, length)


def idle_memory_mb(model: str | None, runtime: str | None, idle_chats: int) -> tuple[float, int]:
    """RSS (MB) of a process set up as the bot is (model loaded and warmed, one chat served) holding
    `idle_chats` chats' states; and how many it held. Run in a fresh interpreter: the baselines' Keras
    models are not the bot's."""
    from model import load  # noqa: PLC0415

    m = load(model, runtime)
    m.warm_up()
    asyncio.run(through_scheduler(m, 1, 50, 0.8, SchedulerConfig()))
    sessions = {i: ChatSession(version=1, states=np.random.rand(m.num_states, 1, m.units).astype(np.float32))
                for i in range(idle_chats)}
    return rss_mb(), len(sessions)


def p(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["cps"])[len(runs) // 2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="SavedModel directory (default: the shipped model)")
    ap.add_argument("--runtime", help="int8 (default) or float32 (the SavedModel's exact graph)")
    ap.add_argument("--length", type=int, default=300, help="characters each chat generates")
    ap.add_argument("--chats", type=int, default=32, help="chats writing at once in (c)")
    ap.add_argument("--more-chats", type=int, nargs="*", default=[64, 128], help="also measured, once each")
    ap.add_argument("--idle-chats", type=int, default=1000, help="chats holding a state for the memory figure")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--repeats", type=int, default=3, help="runs of (a), (a'), (b) and (c); medians reported")
    args = ap.parse_args(argv)
    from model import load  # noqa: PLC0415

    m = load(args.model, args.runtime)
    chars, weights = m.chars(), m.weights()
    baseline, ours, singles, manys = [], [], [], []
    # The tutorial's loops run in a process of their own: TensorFlow's thread pools keep spinning for a
    # while after a call, and in this process would take the cores from the runs that follow them.
    with multiprocessing.get_context("spawn").Pool(1, initializer=start_tutorial,
                                                   initargs=(chars, args.temperature, weights)) as tutorial:
        for _ in range(args.repeats):  # alternating: this machine is noisy
            baseline.append(tutorial.apply(tutorial_cps, (False, PROMPTS[0], args.length)))
            ours.append(tutorial.apply(tutorial_cps, (True, PROMPTS[0], args.length)))
            singles.append(run_chats(m, 1, args))
            manys.append(run_chats(m, args.chats, args))
    notebook, notebook_ours = float(np.median(baseline)), float(np.median(ours))
    single, many = median_run(singles), median_run(manys)
    more = {(n, b): run_chats(m, n, args, b) for n in args.more_chats for b in (None, n)}
    costs = per_char_costs(weights, m.runtime)
    machine = measure_machine(costs["bytes_per_char"])
    bandwidth_fraction = single["cps"] * costs["bytes_per_char"] / (machine["bandwidth_gbs"] * 1e9)
    compute_fraction = many["cps"] * costs["flops_per_char"] / (machine["int8_gemm_gflops"] * 1e9)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        memory, idle = pool.apply(idle_memory_mb, (args.model, args.runtime, args.idle_chats))

    arch = m.card.architecture
    print(f"model {m.path} ({m.card.name}: {arch.layers}×{arch.cell.upper()} {arch.units}), "
          f"runtime {m.runtime_form}, {args.length} chars per chat, {platform.machine()}")
    runs = lambda xs: " ".join(f"{x:.0f}" for x in xs)  # noqa: E731
    print(f"runs, chars/s: (a) {runs(baseline)}; (a') {runs(ours)}; (b) {runs(r['cps'] for r in singles)}; "
          f"(c) {runs(r['cps'] for r in manys)}")
    rows = [("(a) tutorial model and loop", notebook, float("nan")),
            ("(a') tutorial loop, our weights", notebook_ours, float("nan")),
            ("(b) scheduler, 1 chat", single["cps"], single["first"][0]),
            (f"(c) scheduler, {args.chats} chats", many["cps"], p(many["first"], 95))]
    rows += [(f"    {n} chats, batch {b or SchedulerConfig.max_batch}", r["cps"], p(r["first"], 95))
             for (n, b), r in more.items()]
    print(f"{'':34} {'chars/s':>9} {'vs (a)':>7} {'first text s':>13}")
    for name, cps, first in rows:
        print(f"{name:34} {cps:9.0f} {cps / notebook:7.2f} {first:13.3f}")
    print(f"(c) final text p50 {p(many['final'], 50):.2f} s, p95 {p(many['final'], 95):.2f} s; "
          f"{many['rounds']} model calls")
    print(f"roofline: {costs['bytes_per_char'] / 1e6:.1f} MB of weights and {costs['flops_per_char'] / 1e6:.1f} MFLOP "
          f"per character; this machine streams {machine['bandwidth_gbs']:.1f} GB/s over that much, int8 GEMM "
          f"{machine['int8_gemm_gflops']:.0f} GFLOP/s (float32 {machine['float32_gemm_gflops']:.0f})")
    print(f"  (b) reaches {bandwidth_fraction:.0%} of the bandwidth cap "
          f"({machine['bandwidth_gbs'] * 1e9 / costs['bytes_per_char']:.0f} chars/s); "
          f"(c) {compute_fraction:.0%} of the int8 compute cap "
          f"({machine['int8_gemm_gflops'] * 1e9 / costs['flops_per_char']:.0f} chars/s)")
    print(f"RSS of a process set up as the bot, with {idle} chats holding states: {memory:.0f} MB")
    c = f"concurrent{args.chats}"
    result = {"notebook_cps": round(notebook, 1), "notebook_ours_cps": round(notebook_ours, 1),
              "single_cps": round(single["cps"], 1), f"{c}_cps": round(many["cps"], 1),
              "single_vs_notebook": round(single["cps"] / notebook, 2),
              f"{c}_vs_notebook": round(many["cps"] / notebook, 2),
              **{f"concurrent{n}_batch{b or SchedulerConfig.max_batch}_cps": round(r["cps"], 1)
                 for (n, b), r in more.items()},
              "first_text_single_s": round(single["first"][0], 3),
              "p95_first_text_s": round(p(many["first"], 95), 3), "p50_final_text_s": round(p(many["final"], 50), 3),
              "p95_final_text_s": round(p(many["final"], 95), 3), **costs,
              **{k: round(v, 1) for k, v in machine.items()},
              "bandwidth_fraction": round(bandwidth_fraction, 4), "compute_fraction": round(compute_fraction, 4),
              "rss_mb": round(memory, 1), "idle_chats": idle, "length": args.length,
              "runtime": m.runtime, "runtime_form": m.runtime_form, "model": m.card.name}
    return result_line(result)


if __name__ == "__main__":
    sys.exit(main())
