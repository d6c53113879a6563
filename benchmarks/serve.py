"""Serving throughput and latency: 1,000 streams of a char LSTM language model (H=128), single observations, for
the unbatched server (--max-batch 1) and micro-batching, loaded by wrk (C, one thread: the client costs little CPU)
and, without sockets, in process (httpx's ASGI transport).

Optionally side by side with another checkout (``--baseline DIR``: its ``src`` is served by the same runs, in
alternation), to measure a change under the same machine load. Also times the in-process batched step for 1,000
streams (the model alone, and a whole engine batch with the SQLite transaction). Every run is recorded with the
load average around it and the CPU time the server process and wrk spent per observation (which, unlike
throughput and latency, hardly depends on what else the machine runs); the summary quotes, per version and mode,
the run with the median throughput and that run's own latencies. Results go to benchmarks/results/serve-<date>.json
(never over an earlier file). Run under the shared lock:

    flock /tmp/rnnkit-bench.lock .venv/bin/python benchmarks/serve.py [--baseline /path/to/old/checkout]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

ROOT = Path(__file__).resolve().parents[1]
TEXT = "the quick brown fox jumps over the lazy dog. " * 20
#: issue 11's target for micro-batching at 1,000 streams, single observations, 2 cores
TARGET = {"throughput": 3000.0, "p99_ms": 50.0, "speedup": 5.0}


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

    torch.set_num_threads(1)
    sys.setswitchinterval(0.0005)  # as `rnnkit serve` sets it (rnnkit.serve.app.from_env)
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


def _env(src: Path | None) -> dict[str, str]:
    """The environment that serves ``src`` (a checkout's src directory) instead of the installed rnnkit."""
    return {**os.environ, "PYTHONPATH": str(src)} if src else dict(os.environ)


def asgi_subprocess(src: Path | None, *args: object) -> float:
    """:func:`asgi_in_process` in a fresh process running ``src``'s rnnkit."""
    cmd = [sys.executable, __file__, "--asgi-only", *map(str, args)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(src), cwd=ROOT, check=False)
    if out.returncode != 0:
        raise SystemExit(f"in-process run failed: {out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, store: str, max_batch: int, wait: float, src: Path | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "rnnkit", "serve", str(run), "--port", str(port), "--store", store]
    cmd += ["--max-batch", str(max_batch), "--max-wait-ms", str(wait)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(src))
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


def _cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wrk_test(url: str, streams: int, concurrency: int, seconds: float, warmup: float, folder: Path, pid: int) -> dict:
    """``concurrency`` requests in flight from wrk (C, one thread) for ``seconds`` after ``warmup`` seconds. Besides
    throughput and latency (which depend on what else the machine runs), the CPU time the server process ``pid``
    and the wrk client spent per observation (which does not, or much less)."""
    script = folder / "observe.lua"
    script.write_text(WRK_SCRIPT.replace("STREAMS", str(streams)))
    base = ["wrk", "-t1", f"-c{concurrency}", "--latency", "-s", str(script), url]
    if warmup > 0:
        subprocess.run([*base[:3], f"-d{warmup:g}s", *base[3:]], capture_output=True, check=True)
    before = _metrics(url)
    load = os.getloadavg()[0]
    cpu0, client0 = _cpu(pid), _children_cpu()
    out = subprocess.run([*base[:3], f"-d{seconds:g}s", *base[3:]], capture_output=True, text=True, check=True).stdout
    cpu1, client1 = _cpu(pid), _children_cpu()
    after = _metrics(url)
    observations = after["rnnkit_observations_total"] - before["rnnkit_observations_total"] or float("nan")
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
    sock = [x.strip() for x in out.splitlines() if x.strip().startswith("Socket errors")]
    batches = after["rnnkit_batch_size_count"] - before["rnnkit_batch_size_count"]
    return {
        "throughput": rps,
        "p50_ms": ms("50%"),
        "p90_ms": ms("90%"),
        "p99_ms": ms("99%"),
        "non_2xx": bad[0] if bad else 0,
        "socket_errors": sock[0] if sock else None,
        "mean_batch": (after["rnnkit_batch_size_sum"] - before["rnnkit_batch_size_sum"]) / batches if batches else 0,
        # CPU-microseconds per observation (metrics and the /metrics scrapes around the run count too)
        "server_user_us_per_obs": 1e6 * (cpu1[0] - cpu0[0]) / observations,
        "server_sys_us_per_obs": 1e6 * (cpu1[1] - cpu0[1]) / observations,
        "server_cpu_us_per_obs": 1e6 * (sum(cpu1) - sum(cpu0)) / observations,
        "client_cpu_us_per_obs": 1e6 * (client1 - client0) / observations,
        "load_1min": load,
    }


def _metrics(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics").text
    out = {}
    for name in ("rnnkit_batch_size_sum", "rnnkit_batch_size_count", "rnnkit_observations_total"):
        out[name] = next((float(x.split()[1]) for x in text.splitlines() if x.startswith(name + " ")), 0.0)
    return out


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _commit(src: Path) -> dict[str, object]:
    """The git commit of the checkout holding ``src`` (and whether its rnnkit sources differ from it)."""

    def git(*a: str) -> str:
        r = subprocess.run(["git", "-C", str(src), *a], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    return {"src": str(src), "commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", "."))}


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput (its own latencies, not per-field medians of different runs)."""
    ordered = sorted(runs, key=lambda x: x["throughput"])
    return ordered[(len(ordered) - 1) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[128, 32], help="wrk connections (batched)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-batch", type=int, default=256)
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    ap.add_argument("--synchronous", default="full", help="SQLite store: full (fsync per commit) or normal")
    ap.add_argument("--baseline", type=Path, help="another checkout, served side by side (its src/ directory)")
    ap.add_argument(
        "--out", type=Path, help="where to write the JSON (default: results/serve-<date>.json; -2, -3... if it exists)"
    )
    ap.add_argument("--asgi-only", nargs=6, metavar="X", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.asgi_only:  # a subprocess of the main run: one in-process measurement of the rnnkit on PYTHONPATH
        run, store, max_batch, wait, conc, n = args.asgi_only
        print(asgi_in_process(Path(run), store, int(max_batch), float(wait), int(conc), int(n)))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("benchmarks/serve.py loads the server with wrk: apt-get install wrk")
    import rnnkit

    current = Path(rnnkit.__file__).resolve().parents[1]
    versions: dict[str, Path | None] = {"current": current}
    if args.baseline:
        versions["baseline"] = (args.baseline / "src").resolve()
    modes = {"batched": (args.max_batch, args.max_wait_ms), "unbatched": (1, 0.0)}
    c0 = args.concurrency[0]
    runs: dict = {v: {"wrk": {}, "asgi": {m: [] for m in modes}} for v in versions}
    started = _uptime()
    print(started, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp) / "lm", args.hidden)
        step = in_process(run, args.streams)
        print(
            f"in-process, {args.streams} streams, H={args.hidden}: model step {1000 * step['model_step_s']:.2f} ms, "
            f"engine batch (SQLite transaction included) {1000 * step['engine_batch_s']:.2f} ms",
            flush=True,
        )
        k = 0
        for r in range(args.repeats):
            for mode, (max_batch, wait) in modes.items():
                for conc in args.concurrency if mode == "batched" else [c0]:
                    for version, src in versions.items():
                        k += 1
                        store = f"sqlite:///{tmp}/{k}.db?synchronous={args.synchronous}"
                        proc, url = start_server(run, store, max_batch, wait, src)
                        try:
                            w = wrk_test(url, args.streams, conc, args.seconds, args.warmup, Path(tmp), proc.pid)
                        finally:
                            proc.terminate()
                            proc.wait()
                        runs[version]["wrk"].setdefault(f"{mode}@{conc}", []).append(w)
                        print(
                            f"  repeat {r + 1} {version:8s} {mode:9s} c={conc:<3d}: {w['throughput']:7.0f} obs/s, "
                            f"p50 {w['p50_ms']:6.1f} ms, p99 {w['p99_ms']:6.1f} ms, mean batch {w['mean_batch']:5.1f}, "
                            f"non-2xx {w['non_2xx']}, load {w['load_1min']:.2f}, CPU-us/obs server "
                            f"{w['server_cpu_us_per_obs']:.0f} client {w['client_cpu_us_per_obs']:.0f}",
                            flush=True,
                        )
            for mode, (max_batch, wait) in modes.items():
                for version, src in versions.items():
                    k += 1
                    store = f"sqlite:///{tmp}/{k}.db?synchronous={args.synchronous}"
                    rate = asgi_subprocess(src, run, store, max_batch, wait, c0, 4096 if max_batch > 1 else 1024)
                    runs[version]["asgi"][mode].append(rate)
                    print(f"  repeat {r + 1} {version:8s} {mode:9s} in process (ASGI): {rate:7.0f} obs/s", flush=True)
    finished = _uptime()
    summary: dict = {}
    for version in versions:
        wrk = {key: median_run(x) for key, x in runs[version]["wrk"].items()}
        asgi = {m: statistics.median(x) for m, x in runs[version]["asgi"].items()}
        best = wrk[f"batched@{c0}"]
        summary[version] = {
            "wrk_median_run": wrk,
            # per mode, the median over the repeats (CPU time per observation hardly depends on the machine's load)
            "server_cpu_us_per_obs": {
                key: statistics.median(r["server_cpu_us_per_obs"] for r in x) for key, x in runs[version]["wrk"].items()
            },
            "client_cpu_us_per_obs": {
                key: statistics.median(r["client_cpu_us_per_obs"] for r in x) for key, x in runs[version]["wrk"].items()
            },
            "wrk_batched_over_unbatched": best["throughput"] / wrk[f"unbatched@{c0}"]["throughput"],
            "asgi_median": asgi,
            "asgi_batched_over_unbatched": asgi["batched"] / asgi["unbatched"],
            "target_met": {
                f"batched@{c}": wrk[f"batched@{c}"]["throughput"] >= TARGET["throughput"]
                and wrk[f"batched@{c}"]["p99_ms"] <= TARGET["p99_ms"]
                for c in args.concurrency
            },
        }
    if "baseline" in versions:
        summary["current_over_baseline"] = {
            key: summary["current"]["wrk_median_run"][key]["throughput"]
            / summary["baseline"]["wrk_median_run"][key]["throughput"]
            for key in summary["current"]["wrk_median_run"]
        }
    per_obs_us = 1e6 / summary["current"]["wrk_median_run"][f"batched@{c0}"]["throughput"]
    model_us = 1e6 * step["model_step_s"] / args.streams
    cpu_us = summary["current"]["server_cpu_us_per_obs"][f"batched@{c0}"]
    print(f"median runs of {args.repeats} ({args.streams} streams):")
    for version in versions:
        for key, x in summary[version]["wrk_median_run"].items():
            print(
                f"  {version:8s} {key:13s} (wrk): {x['throughput']:7.0f} obs/s, p50 {x['p50_ms']:.1f} ms, "
                f"p99 {x['p99_ms']:.1f} ms"
            )
        s = summary[version]
        print(
            f"  {version:8s} CPU-us per observation (median), server / wrk: "
            + ", ".join(
                f"{key} {s['server_cpu_us_per_obs'][key]:.0f} / {s['client_cpu_us_per_obs'][key]:.0f}"
                for key in s["server_cpu_us_per_obs"]
            )
        )
        print(
            f"  {version:8s} batched / unbatched: wrk {s['wrk_batched_over_unbatched']:.1f}x, in process "
            f"{s['asgi_batched_over_unbatched']:.1f}x ({s['asgi_median']['batched']:.0f} vs "
            f"{s['asgi_median']['unbatched']:.0f} obs/s)"
        )
    if "baseline" in versions:
        print(
            "  current / baseline (wrk): "
            + ", ".join(f"{k} {v:.2f}x" for k, v in summary["current_over_baseline"].items())
        )
    print(
        f"  the model's batched step (1,000 streams) is {model_us:.2f} us of the {per_obs_us:.0f} wall-us an "
        f"observation takes (batched) and of the {cpu_us:.0f} CPU-us the server spends on it"
    )
    print(f"  load: {started} -> {finished}")
    out = args.out or ROOT / "benchmarks" / "results" / f"serve-{datetime.date.today()}.json"
    stem, n = out.stem, 1
    while out.exists():  # never overwrite a recorded run
        n += 1
        out = out.with_name(f"{stem}-{n}{out.suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "asgi_only"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
        "uptime": {"start": started, "end": finished},
        "versions": {v: _commit(src) for v, src in versions.items()},
        "target": TARGET,
        "in_process": {
            **step,
            "model_share_of_an_observation": model_us / per_obs_us,
            "model_share_of_the_server_cpu": model_us / cpu_us,
        },
        "runs": runs,
        "summary": summary,
        "notes": (
            "summary.<version>.wrk_median_run.<mode>@<connections>: of the repeats, the run with the median "
            "throughput, with that run's own p50/p99 and mean batch; *_over_*: ratios of those runs' throughputs; "
            "asgi_median: median observations/s in process (no sockets); load_1min: the load average as each run "
            "began (2 cores shared with other work)"
        ),
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
