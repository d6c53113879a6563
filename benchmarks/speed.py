"""Speed of rnnkit against torch.nn, measured side by side: one table per item of issue 13, JSON into results/.

    python benchmarks/speed.py                 # everything (~30 minutes on 2 cores; trains a translation model
                                               # for the decoding table first if runs/bench-de-en is missing)
    python benchmarks/speed.py --quick         # smallest size, few repeats, no accuracy/decoding runs, no JSON
    python benchmarks/speed.py --only lengths,gru

The machine is shared and noisy, so contenders are timed round-robin (A, B, C, A, B, C, ...) and every number
is a median (benchmarks/timing.py); a ratio is time(reference) / time(contender) per round, median over rounds.
Run it under the shared lock (flock /tmp/rnnkit-bench.lock ...) and note the load (the header prints uptime).

Tables (sizes (B, T, I, H) = (16, 200, 32, 64), (32, 100, 128, 256), (64, 50, 256, 512)):
1. gru: rnnkit's GRU (C++ kernel) vs torch.nn.LSTM and torch.nn.GRU at equal H, uni- and bidirectional.
2. lengths: LSTM/GRU/RNN, rnnkit and torch.nn each with and without lengths (random in [T/2, T]).
3. cells: layer-norm LSTM, minGRU, minLSTM vs torch.nn.LSTM.
4. precision: bf16 vs fp32 per cell; adding-problem and ETTh1 accuracy with each.
5. decoding: ``rnnkit predict`` on Multi30k val, beam 5, against the commit before issue 13 (benchmarks/decoding.py).
6. step: Recurrent.step vs a raw torch.nn cell call at B=1 and B=1000 (benchmarks/speed_step.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import date
from pathlib import Path

import torch

import decoding
import speed_layers
import speed_precision
import speed_step

TABLES = ("gru", "lengths", "cells", "precision", "decoding", "step")


def environment() -> dict:
    """What the numbers depend on besides the code: torch, threads, CPU, load, and whether rnnkit's C++ kernels
    ran (without them every rnnkit path times its pure-PyTorch fallback)."""
    from rnnkit import _ext

    kernels = _ext.status()
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "load_average": os.getloadavg(),
        "kernels": {"used": kernels["built"], **{k: kernels[k] for k in ("name", "variant", "reason")}},
    }


def describe(env: dict) -> str:
    k = env["kernels"]
    kernels = f"used ({k['name']})" if k["used"] else f"NOT used, pure-PyTorch fallback ({k['reason']})"
    load = ", ".join(f"{v:.2f}" for v in env["load_average"])
    return f"torch {env['torch']}, {env['threads']} threads, {env['machine']}, load {load}, C++ kernels: {kernels}"


def summary(record: dict) -> None:
    """One line per target of issue 13, worst case over the grid."""
    if "gru" in record:
        print(f"GRU vs torch.nn.LSTM, training: worst {min(r['train_vs_lstm'] for r in record['gru']):.2f} (>= 1.0)")
    if "lengths" in record:
        worst = max(r["train_lengths_cost"] for r in record["lengths"])
        packed = min(r["train_lengths_vs_torch_packed"] for r in record["lengths"])
        print(f"lengths cost, training: worst {worst:.2f} (<= 1.3); vs torch.nn packed: worst {packed:.1f}x")
    if "cells" in record:
        for k, target in (("layernorm_lstm", 0.5), ("mingru", 1.0), ("minlstm", 1.0)):
            worst = min(r["ratio_train"][k] for r in record["cells"])
            print(f"{k} vs torch.nn.LSTM, training: worst {worst:.2f} (>= {target})")
    if "decoding" in record:
        d = record["decoding"]
        print(f"decoding: {d['ratio']:.2f}x the baseline (>= 3), identical outputs: {d['identical_outputs']}")
    if "step" in record:
        for B, target in ((1, 0.85), (1000, 0.95)):
            rows = [r for r in record["step"] if r["batch"] == B]
            print(
                f"step at B={B}: worst {min(r['ratio'] for r in rows):.2f} checked, "
                f"{min(r['ratio_unchecked'] for r in rows):.2f} unchecked (>= {target})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smallest size, few repeats, no long runs, no JSON")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per contender (median)")
    parser.add_argument("--only", default=",".join(TABLES), help=f"comma-separated subset of {', '.join(TABLES)}")
    parser.add_argument("--translate-run", type=Path, default=decoding.ROOT / "runs" / "bench-de-en")
    parser.add_argument("--baseline-src", type=Path, help="decoding: an extracted src/ of the baseline commit")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="JSON directory")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if args.quick:
        only -= {"decoding"}
    sizes = speed_layers.SIZES[:1] if args.quick else speed_layers.SIZES
    repeats = 5 if args.quick else args.repeats
    env = environment()
    print(describe(env), flush=True)
    record: dict = {**env}
    if "gru" in only:
        record["gru"] = speed_layers.gru_table(sizes, repeats)
    if "lengths" in only:
        record["lengths"] = speed_layers.lengths_table(sizes, repeats)
    if "cells" in only:
        record["cells"] = speed_layers.other_cells_table(sizes, repeats)
    if "precision" in only:
        record["precision_speed"] = speed_precision.speed_table(sizes, repeats)
        if not args.quick:
            record["precision_accuracy"] = speed_precision.accuracy_table(1500, 3)
    if "decoding" in only:
        if not (args.translate_run / "model" / "config.json").is_file():
            print(f"no trained run at {args.translate_run}: training one (two epochs)", flush=True)
            decoding.train_run(args.translate_run, baseline_src=args.baseline_src)
        record["decoding"] = decoding.measure(args.translate_run, baseline_src=args.baseline_src)
    if "step" in only:
        record["step"] = speed_step.step_table(21 if not args.quick else 5)
    record["load_average_end"] = os.getloadavg()
    summary(record)
    if not args.quick:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"speed-{date.today().isoformat()}.json"
        path.write_text(json.dumps(record, indent=1))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
