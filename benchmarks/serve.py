"""Serving throughput and latency: 1,000 streams of a char LSTM language model (H=128), single observations from
concurrent async clients (httpx) on the same machine, for the unbatched server (--max-batch 1) and micro-batching.

Also times the in-process batched step for 1,000 streams (the model alone, and a whole engine batch with the
SQLite transaction) to show how much of an observation's cost is outside the model (HTTP, JSON, validation,
the store). Modes alternate, each run `--repeats` times; medians are reported. Results go to
benchmarks/results/serve-<date>.json. Run under the shared lock:

    flock /tmp/rnnkit-bench.lock .venv/bin/python benchmarks/serve.py
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import torch

ROOT = Path(__file__).resolve().parents[1]
TEXT = "the quick brown fox jumps over the lazy dog. " * 20


def make_run(path: Path, hidden: int) -> Path:
    """A char LSTM language model with random weights, saved as `rnnkit train lm` saves one."""
    from rnnkit.data.text import Vocab, make_tokenizer
    from rnnkit.tasks.lm import LanguageModel, LMConfig
    from rnnkit.topologies.base import RNNConfig

    torch.manual_seed(0)
    cfg = LMConfig(embedding_dim=32, rnn=RNNConfig(cell="lstm", hidden_size=hidden, num_layers=1))
    tok = make_tokenizer("char")
    vocab = Vocab.build([tok.tokenize(TEXT)])
    LanguageModel(cfg, LanguageModel.build_model(cfg, len(vocab)), tok, vocab).save(path / "model")
    return path


def in_process(run: Path, streams: int, repeats: int = 50) -> dict[str, float]:
    """Median seconds of: the model's batched step for `streams` streams; a whole engine batch (store included)."""
    from rnnkit.serve.engine import Engine, Observation
    from rnnkit.serve.schemas import ObserveRequest
    from rnnkit.serve.store import SQLiteStore
    from rnnkit.serve.streaming import streamer_for
    from rnnkit.tasks import load

    torch.set_num_threads(1)  # as the server runs it (rnnkit serve --threads 1)
    task = load(run, "cpu")
    streamer = streamer_for(task)
    tokens = torch.randint(4, len(task.vocab), (streams,))
    state = task.model.rnn.initial_state(streams)
    model = []
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            task.model(tokens[:, None], state)  # what the server runs for single observations
            model.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(streamer, SQLiteStore(Path(tmp) / "s.db"))
        req = ObserveRequest(token="a", top=1)
        items = [Observation(f"s{i}", None, *streamer.parse(req), req) for i in range(streams)]
        batch = []
        for _ in range(max(5, repeats // 5)):
            t0 = time.perf_counter()
            engine.run(items)
            batch.append(time.perf_counter() - t0)
        engine.store.close()
    return {"model_step_s": statistics.median(model), "engine_batch_s": statistics.median(batch[1:])}


def asgi_in_process(run: Path, store: str, max_batch: int, wait: float, concurrency: int, n: int) -> float:
    """Observations per second through the whole app in this process (httpx's ASGI transport: no sockets, the
    client in the same process): the server's own cost, apart from the network stack and client processes."""
    from rnnkit.serve import ServeConfig, create_app

    app = create_app(ServeConfig(run, store=store, max_batch=max_batch, max_wait_ms=wait))
    guard = app.state.guarded

    async def go() -> float:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(guard)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:

                async def worker(w: int) -> None:
                    for i in range(n // concurrency):
                        sid = f"s{(w + i * concurrency) % 1000}"
                        r = await client.post(f"/v1/streams/{sid}/observe", json={"token": "a", "top": 1})
                        assert r.status_code == 200, r.text

                await asyncio.gather(*(worker(w) for w in range(concurrency)))  # warm-up
                t0 = time.perf_counter()
                await asyncio.gather(*(worker(w) for w in range(concurrency)))
                return (n // concurrency) * concurrency / (time.perf_counter() - t0)

    return asyncio.run(go())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, store: str, max_batch: int, max_wait_ms: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "rnnkit", "serve", str(run), "--port", str(port), "--store", store]
    cmd += ["--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server failed: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


async def _client(url: str, mine: list[list[str]], warmup: float, seconds: float) -> tuple[list[float], int]:
    """One client process: a task per list of streams in ``mine``, observing its streams in turn."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=len(mine), max_keepalive_connections=len(mine))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        start = time.perf_counter()
        measure_from, stop_at = start + warmup, start + warmup + seconds

        async def worker(streams: list[str]) -> None:
            nonlocal errors
            k = 0
            while (now := time.perf_counter()) < stop_at:
                sid = streams[k % len(streams)]
                k += 1
                r = await client.post(f"/v1/streams/{sid}/observe", json={"token": TEXT[k % 40], "top": 1})
                done = time.perf_counter()
                if r.status_code != 200:
                    errors += 1
                elif now >= measure_from:
                    latencies.append(done - now)

        await asyncio.gather(*(worker(s) for s in mine))
    return latencies, errors


def _client_process(args: tuple[str, list[list[str]], float, float]) -> tuple[list[float], int]:
    return asyncio.run(_client(*args))


def load_test(url: str, streams: int, concurrency: int, clients: int, warmup: float, seconds: float) -> dict:
    """``concurrency`` requests in flight from ``clients`` processes (httpx's pool slows down with many
    connections in one process); each in-flight slot owns every concurrency-th stream."""
    slots = [[f"s{i}" for i in range(w, streams, concurrency)] for w in range(concurrency)]
    jobs = [(url, slots[c::clients], warmup, seconds) for c in range(clients)]
    with ProcessPoolExecutor(clients, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(_client_process, jobs))
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    metrics = httpx.get(f"{url}/metrics").text
    n = len(latencies)
    batch_sum = _metric(metrics, "rnnkit_batch_seconds_sum")
    batch_count = _metric(metrics, "rnnkit_batch_seconds_count")
    sizes = _metric(metrics, "rnnkit_batch_size_sum")
    return {
        "throughput": n / seconds,
        "p50_ms": 1000 * latencies[n // 2] if n else float("nan"),
        "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else float("nan"),
        "errors": errors,
        "mean_batch": sizes / batch_count if batch_count else 0.0,
        "mean_batch_ms": 1000 * batch_sum / batch_count if batch_count else 0.0,
    }


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"token": "a", "top": 1}'
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/streams/s" .. ((n * 7919 + math.random(0, 999)) % STREAMS) .. "/observe")
end
"""


def wrk_test(url: str, streams: int, concurrency: int, seconds: float, folder: Path) -> dict[str, float]:
    """The same load from wrk (C, one thread): how fast the server is when the client costs little CPU."""
    script = folder / "observe.lua"
    script.write_text(WRK_SCRIPT.replace("STREAMS", str(streams)))
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def ms(label: str) -> float:
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == label:
                value = parts[1]
                suffix = value.lstrip("0123456789.")
                return float(value[: len(value) - len(suffix)]) * unit[suffix]
        return float("nan")

    rps = next(float(x.split()[1]) for x in out.splitlines() if x.startswith("Requests/sec:"))
    bad = [int(x.split()[-1]) for x in out.splitlines() if x.strip().startswith("Non-2xx")]
    metrics = httpx.get(f"{url}/metrics").text
    count = _metric(metrics, "rnnkit_batch_seconds_count")
    return {
        "throughput": rps,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "errors": bad[0] if bad else 0,
        "mean_batch": _metric(metrics, "rnnkit_batch_size_sum") / count if count else 0.0,
    }


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--concurrency", type=int, default=128, help="client requests in flight")
    ap.add_argument("--clients", type=int, default=4, help="client processes sharing the concurrency")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-batch", type=int, default=256)
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    ap.add_argument("--synchronous", default="full", help="SQLite store: full (fsync per commit) or normal")
    args = ap.parse_args()
    modes = {"unbatched": (1, 0.0), "batched": (args.max_batch, args.max_wait_ms)}
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    wrk_runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    use_wrk = shutil.which("wrk") is not None
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp) / "lm", args.hidden)
        step = in_process(run, args.streams)
        print(
            f"in-process, {args.streams} streams, H={args.hidden}: model step {1000 * step['model_step_s']:.2f} ms, "
            f"engine batch (SQLite transaction included) {1000 * step['engine_batch_s']:.2f} ms"
        )
        asgi: dict[str, list[float]] = {m: [] for m in modes}
        for r in range(args.repeats):
            for mode, (max_batch, wait) in modes.items():
                store = f"sqlite:///{tmp}/asgi-{mode}-{r}.db?synchronous={args.synchronous}"
                asgi[mode].append(asgi_in_process(run, store, max_batch, wait, args.concurrency, 4096))
            print(f"  repeat {r + 1} in process (ASGI): " + ", ".join(f"{m} {asgi[m][-1]:.0f} obs/s" for m in modes))
        for r in range(args.repeats):
            for mode, (max_batch, wait) in modes.items():
                store = f"sqlite:///{tmp}/{mode}-{r}.db?synchronous={args.synchronous}"
                proc, url = start_server(run, store, max_batch, wait)
                try:
                    res = load_test(url, args.streams, args.concurrency, args.clients, args.warmup, args.seconds)
                finally:
                    proc.terminate()
                    proc.wait()
                runs[mode].append(res)
                if use_wrk:  # the same server, now loaded by wrk
                    proc, url = start_server(run, store.replace(".db", "-wrk.db"), max_batch, wait)
                    try:
                        w = wrk_test(url, args.streams, args.concurrency, args.seconds, Path(tmp))
                    finally:
                        proc.terminate()
                        proc.wait()
                    wrk_runs[mode].append(w)
                    print(
                        f"  repeat {r + 1} {mode:9s} (wrk): {w['throughput']:7.0f} obs/s, p50 {w['p50_ms']:6.1f} ms, "
                        f"p99 {w['p99_ms']:6.1f} ms, mean batch {w['mean_batch']:.1f}, non-2xx {w['errors']}",
                        flush=True,
                    )
                print(
                    f"  repeat {r + 1} {mode:9s}: {res['throughput']:7.0f} obs/s, p50 {res['p50_ms']:6.1f} ms, "
                    f"p99 {res['p99_ms']:6.1f} ms, mean batch {res['mean_batch']:.1f} "
                    f"({res['mean_batch_ms']:.2f} ms), errors {res['errors']}",
                    flush=True,
                )
    med = {m: {k: statistics.median(x[k] for x in runs[m]) for k in runs[m][0]} for m in modes}
    speedup = med["batched"]["throughput"] / med["unbatched"]["throughput"]
    per_obs_us = 1e6 / med["batched"]["throughput"]
    # the model's share: its batched step at 1,000 streams, per observation, against the time per observation
    model_us = 1e6 * step["model_step_s"] / args.streams
    print(f"medians of {args.repeats}, {args.streams} streams, {args.concurrency} concurrent requests:")
    for m in modes:
        x = med[m]
        print(f"  {m:9s}: {x['throughput']:7.0f} obs/s, p50 {x['p50_ms']:.1f} ms, p99 {x['p99_ms']:.1f} ms")
    print(f"  batched / unbatched throughput: {speedup:.1f}x")
    if use_wrk:
        wmed = {m: {k: statistics.median(x[k] for x in wrk_runs[m]) for k in wrk_runs[m][0]} for m in modes}
        for m in modes:
            x = wmed[m]
            print(f"  {m:9s} (wrk): {x['throughput']:7.0f} obs/s, p50 {x['p50_ms']:.1f} ms, p99 {x['p99_ms']:.1f} ms")
        ratio = wmed["batched"]["throughput"] / wmed["unbatched"]["throughput"]
        print(f"  batched / unbatched throughput (wrk): {ratio:.1f}x")
    asgi_med = {m: statistics.median(asgi[m]) for m in modes}
    print(
        "  in process (ASGI, no sockets, client in the same process): "
        + ", ".join(f"{m} {asgi_med[m]:.0f} obs/s" for m in modes)
        + f" ({asgi_med['batched'] / asgi_med['unbatched']:.1f}x)"
    )
    print(
        f"  time per observation (batched, both cores, client included): {per_obs_us:.0f} us; the model's batched "
        f"step costs {model_us:.2f} us of it ({100 * model_us / per_obs_us:.1f}%): "
        f"{100 - 100 * model_us / per_obs_us:.1f}% is outside the model"
    )
    out = ROOT / "benchmarks" / "results" / f"serve-{datetime.date.today()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "args": vars(args),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
        "in_process": step,
        "asgi_in_process": asgi,
        "wrk_runs": wrk_runs,
        "wrk_medians": wmed if use_wrk else None,
        "runs": runs,
        "medians": med,
        "speedup": speedup,
        "outside_model_share": 1 - model_us / per_obs_us,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
