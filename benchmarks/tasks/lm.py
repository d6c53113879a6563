"""Character language model on tinyshakespeare: nats per character on the last 10% of the text.

Protocol (char-rnn, nanoGPT, "Were RNNs all we needed?" Feng et al. 2024): the 1,115,394 characters of
tinyshakespeare/input.txt, the first 90% for training and the last 10% for validation, split by position; the
metric is the mean cross-entropy in nats per character on the validation part, read as 32 contiguous streams whose
state carries from window to window (as char-rnn evaluates). Published: minGRU 1.548, minLSTM 1.555 (3 layers x
384); an interpolated 5-gram model scores about 1.58. The text has no third part, so, as in those papers, the
number is on the validation part that also picks the checkpoint; nothing else was tuned on it beyond the choices
listed in the README.

The recipe is the default of ``rnnkit train lm`` (see :class:`rnnkit.tasks.lm.LMConfig`): a 2-layer LSTM with
512 units, stateful truncated BPTT over windows of 128 characters, 10 epochs with the learning rate on a cosine
from 2e-3 to 0 (the default when ``--epochs`` is given), within ``--minutes`` of training. The same as a command:

    rnnkit train lm --data tinyshakespeare/input.txt --epochs 10 --time-budget 55 --out runs/shakespeare

    python benchmarks/tasks/lm.py             # writes benchmarks/results/lm-<date>.json
    python benchmarks/tasks/lm.py --resume    # continue after an interruption (the time budget spans sessions)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import torch
from _record import environment

from rnnkit.config import to_dict
from rnnkit.data import data_dir
from rnnkit.tasks.lm import LanguageModel, LMConfig

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = {"minGRU (3 x 384)": 1.548, "minLSTM (3 x 384)": 1.555}
BASELINE = {"interpolated 5-gram": 1.58}
TARGET = 1.50


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10, help="passes over the text (the cosine anneals over them)")
    ap.add_argument("--minutes", type=float, default=55.0, help="training time budget (the whole run: <= 60 min)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: a shared 2-core machine)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], help="config overrides key=value (JSON values), for exploring")
    ap.add_argument("--resume", action="store_true", help="continue the interrupted run in --work")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-lm", help="the run directory")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = data_dir() / "tinyshakespeare" / "input.txt"
    cfg = LMConfig()
    trainer = replace(cfg.trainer, epochs=args.epochs, time_budget=args.minutes, seed=args.seed, device="cpu")
    cfg = replace(cfg, trainer=trainer)
    if args.set:
        from rnnkit.config import replace as replace_dotted

        cfg = replace_dotted(cfg, **{k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.set)})
    marker = args.work / "bench-started.json"
    started = json.loads(marker.read_text())["started"] if args.resume and marker.is_file() else time.time()
    tic = time.perf_counter()
    task, metrics = LanguageModel.train(cfg, data, args.work, overwrite=not args.resume, resume=args.resume)
    marker.write_text(json.dumps({"started": started}))
    val = metrics["val"]
    result = {
        "benchmark": "lm",
        "protocol": "tinyshakespeare, first 90% train / last 10% validation by position, nats per character",
        "metric": "validation nats per character",
        "value": val["loss"],
        "bpc": val["bpc"],
        "target": TARGET,
        "met": val["loss"] <= TARGET,
        "published": PUBLISHED,
        "baseline": BASELINE,
        "seconds": round(time.time() - started, 1),
        "seconds_this_session": round(time.perf_counter() - tic, 1),
        "training": metrics["training"],
        "epochs": metrics["training"]["epochs"],
        "config": to_dict(task.cfg),
        "parameters": sum(p.numel() for p in task.model.parameters()),
        "command": "python benchmarks/tasks/lm.py" + (" --set " + " ".join(args.set) if args.set else ""),
        "machine": environment(),
        "date": date.today().isoformat(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"lm-{date.today().isoformat()}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"validation {val['loss']:.4f} nats/char ({val['bpc']:.3f} bpc), target <= {TARGET}; "
        f"{result['epochs']} epochs, {result['seconds'] / 60:.1f} min; stopped: {metrics['training']['stopped']}"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
