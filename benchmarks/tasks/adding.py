"""The adding problem at T = 1000: LSTM and GRU remember across a thousand steps, a vanilla RNN does not.

Protocol (Hochreiter & Schmidhuber 1997; Le et al. 2015; the TCN paper, Bai et al. 2018): each sequence has T
steps of (value ~ U(0, 1), marker), the marker 1 at one position in each half; the target is the sum of the two
marked values. Every training batch is new; the model is picked on 1,000 fixed validation sequences and scored by
MSE on 10,000 fresh test sequences nobody trained or selected on. Predicting the mean scores 1/6 ≈ 0.167; the TCN
paper reports an LSTM at 0.164 (not learned) at T = 600.

The recipe (chosen on validation MSE only): a ManyToOne with one layer of H = 32 units read at the last step and a
linear head, chrono initialisation of the keep gate for dependencies up to T steps (Tallec & Ollivier 2018), Adam
(AdamW without decay) at lr 1e-2 with clipping at 1, batches of 32. LSTM and GRU train until validation MSE is
below ``--solved`` or ``--steps`` updates; the vanilla RNN (tanh; chrono needs a gate) then gets the same number
of updates as the slower of the two. One torch thread: the matrices are tiny and a second thread on a shared
2-core machine only waits.

    python benchmarks/tasks/adding.py              # writes benchmarks/results/adding-<date>.json
    python benchmarks/tasks/adding.py --resume     # after an interruption: finished cells are kept, the rest resume
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

import torch
from _record import environment

from rnnkit import HeadConfig, InputConfig, ManyToOne, ManyToOneConfig, RNNConfig
from rnnkit.data.generated import GeneratedBatches, fixed_batches
from rnnkit.data.synthetic import ADDING_BASELINE_MSE, adding_problem
from rnnkit.training.checkpoint import find_checkpoint, load_weights
from rnnkit.training.trainer import Callback, Trainer, TrainerConfig

ROOT = Path(__file__).resolve().parents[2]
TCN_LSTM_T600 = 0.164  # Bai et al. 2018, Table 1 (adding problem, T = 600)
GATED = ("lstm", "gru")


def make_batch(timestep: int):
    def make(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = adding_problem(n, timestep, generator=gen)
        return x, y.unsqueeze(-1)  # (B, 1, 1): horizon 1, one output

    return make


def build(cell: str, args: argparse.Namespace) -> ManyToOne:
    chrono = args.timestep if cell in GATED and args.chrono else None
    return ManyToOne(
        ManyToOneConfig(
            input=InputConfig(input_size=2),
            rnn=RNNConfig(cell=cell, hidden_size=args.hidden, chrono=chrono),
            pooling="last",
            head=HeadConfig(kind="regression"),
        )
    )


def loss_fn(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


class StopWhenSolved(Callback):
    """Stop once validation MSE is below ``threshold`` (the task is solved; more updates add nothing)."""

    def __init__(self, threshold: float) -> None:
        self.threshold, self.solved = threshold, False

    def on_evaluate(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if metrics["val_loss"] < self.threshold:
            self.solved = True
            trainer.stop()


@torch.no_grad()
def mse_on(model: ManyToOne, batches: list) -> float:
    model.eval()
    total = sum(float(torch.nn.functional.mse_loss(model(x), y, reduction="sum")) for x, y in batches)
    return total / sum(len(x) for x, _ in batches)


def train_cell(cell: str, steps: int, args: argparse.Namespace, resume: bool) -> dict:
    make = make_batch(args.timestep)
    torch.manual_seed(args.seed)
    model = build(cell, args)
    per_epoch = 100
    cfg = TrainerConfig(
        epochs=math.ceil(steps / per_epoch),
        max_steps=steps,
        lr=args.lr,
        clip_norm=1.0,
        eval_every=args.eval_every,
        checkpoint_minutes=2.0,
        log_every=50,
        seed=args.seed,
        device="cpu",
        progress=True,
    )
    train = GeneratedBatches(make, args.batch_size, per_epoch, seed=args.seed)
    val = fixed_batches(make, 1000, 500, seed=10_000 + args.seed)
    stop = StopWhenSolved(args.solved if cell in GATED else 0.0)
    out = args.work / cell
    trainer = Trainer(model, cfg, loss_fn, callbacks=[stop], out_dir=out)
    tic = time.perf_counter()
    state = trainer.fit(train, val, resume=resume and find_checkpoint(out / "checkpoint") is not None)
    if not stop.solved and state.step < steps:
        raise KeyboardInterrupt(f"{cell} interrupted at step {state.step}; continue with --resume")
    best = find_checkpoint(out / "best")
    if best is not None:
        load_weights(model, best)
    test = fixed_batches(make, 10_000, 500, seed=20_000 + args.seed)
    return {
        "cell": cell,
        "chrono": args.timestep if cell in GATED and args.chrono else None,
        "steps": state.step,
        "samples_seen": state.step * args.batch_size,
        "stopped": f"solved (validation MSE below {args.solved:g})" if stop.solved else f"{steps} updates",
        "train_seconds": round(state.seconds, 1),
        "seconds_this_session": round(time.perf_counter() - tic, 1),
        "val_mse": [(e["step"], e["val_loss"]) for e in state.evals],
        "best_val_mse": state.best,
        "test_mse": mse_on(model, test),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timestep", type=int, default=1000, help="T, the sequence length")
    ap.add_argument("--steps", type=int, default=2500, help="the most updates a gated cell gets")
    ap.add_argument("--solved", type=float, default=5e-4, help="stop a gated cell below this validation MSE")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--no-chrono", dest="chrono", action="store_false", help="torch.nn's default init instead")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cells", nargs="+", default=[*GATED, "rnn_tanh"])
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run in --work")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-adding", help="checkpoints and partials")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    partial = args.work / "partial.json"
    settings = {k: v for k, v in vars(args).items() if k not in ("resume", "work", "out")}
    done: dict = json.loads(partial.read_text()) if args.resume and partial.is_file() else {}
    if done and done.get("settings") != settings:
        raise SystemExit(f"--resume: {partial} was made with other settings {done.get('settings')}; rerun without it")
    if not args.resume:
        for cell in args.cells:  # a fresh run: no checkpoint of an earlier run may be resumed by accident
            for sub in ("checkpoint", "best"):
                path = args.work / cell / sub
                if path.exists():
                    import shutil

                    shutil.rmtree(path)
    done.setdefault("settings", settings)
    done.setdefault("started", time.time())
    results = done.setdefault("results", {})
    order = [c for c in args.cells if c in GATED] + [c for c in args.cells if c not in GATED]
    for cell in order:
        if cell in results:
            print(f"{cell}: done earlier (test MSE {results[cell]['test_mse']:.2e})")
            continue
        gated_steps = [results[c]["steps"] for c in GATED if c in results]
        steps = args.steps if cell in GATED or not gated_steps else max(gated_steps)
        print(f"{cell}: up to {steps} updates at T = {args.timestep}", flush=True)
        results[cell] = train_cell(cell, steps, args, args.resume)
        r = results[cell]
        print(f"{cell}: test MSE {r['test_mse']:.2e} after {r['steps']} updates, {r['train_seconds']:.0f} s")
        partial.write_text(json.dumps(done, indent=2) + "\n")
    wall = time.time() - done["started"]
    summary = {
        "benchmark": "adding",
        "protocol": f"adding problem, T = {args.timestep}; MSE on 10,000 fresh test sequences; "
        "model picked on 1,000 validation sequences",
        "metric": "test MSE",
        "baseline_predict_mean": ADDING_BASELINE_MSE,
        "published_lstm_T600_tcn_paper": TCN_LSTM_T600,
        "target": "LSTM and GRU < 1e-3; vanilla RNN fails with the same number of updates; <= 20 min",
        "met": all(results[c]["test_mse"] < 1e-3 for c in GATED if c in results)
        and all(results[c]["test_mse"] > 0.1 * ADDING_BASELINE_MSE for c in results if c not in GATED),
        "seconds": round(wall, 1),
        "config": settings,
        "model": asdict(build("lstm", args).cfg),
        "results": results,
        "machine": environment(),
        "date": date.today().isoformat(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"adding-{date.today().isoformat()}.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    for cell, r in results.items():
        print(f"{cell:>9}: test MSE {r['test_mse']:.2e}  ({r['steps']} updates, {r['train_seconds']:.0f} s)")
    print(f"baseline (predict the mean) {ADDING_BASELINE_MSE:.3f}; wall {wall / 60:.1f} min; wrote {path}")


if __name__ == "__main__":
    main()
