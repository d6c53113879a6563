"""Mixed precision tables of benchmarks/speed.py: bf16 vs fp32 training and inference speed per cell, and the
accuracy each reaches on the adding problem (T=100) and on ETTh1 (``rnnkit train forecast``, test MSE on the scaled
series as the published tables report it).

    python benchmarks/speed_precision.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from rnnkit import Recurrent
from rnnkit.data.synthetic import ADDING_BASELINE_MSE, adding_problem
from rnnkit.precision import autocast
from speed_layers import SIZES, size_str, train_and_infer
from timing import markdown, medians_ms, paired_ratio

CELLS = ["lstm", "gru", "rnn_tanh", "layernorm_lstm", "mingru", "minlstm"]
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RNNKIT_DATA", ROOT.parent / "shared" / "data"))


def speed_table(sizes: list[tuple[int, ...]], repeats: int) -> list[dict]:
    """Recurrent(precision='bf16') against the same layer in fp32, no lengths."""
    rows, cells = [], []
    for size in sizes:
        B, T, I, H = size
        for kind in CELLS:
            torch.manual_seed(0)
            fp32 = Recurrent(kind, I, H)
            bf16 = Recurrent(kind, I, H, precision="bf16")
            bf16.load_state_dict(fp32.state_dict())
            x = torch.randn(B, T, I)
            runs = {"fp32": lambda m=fp32, x=x: m(x)[0], "bf16": lambda m=bf16, x=x: m(x)[0]}
            train, infer = train_and_infer(runs, [fp32, bf16], repeats)
            row = {
                "cell": kind,
                "size": size,
                "train_ms": medians_ms(train),
                "infer_ms": medians_ms(infer),
                "train_speedup": paired_ratio(train, "fp32", "bf16"),
                "infer_speedup": paired_ratio(infer, "fp32", "bf16"),
            }
            rows.append(row)
            t, i = row["train_ms"], row["infer_ms"]
            cells.append(
                [
                    kind,
                    size_str(size),
                    f"{t['fp32']:.1f}",
                    f"{t['bf16']:.1f}",
                    f"{row['train_speedup']:.2f}",
                    f"{i['fp32']:.1f}",
                    f"{i['bf16']:.1f}",
                    f"{row['infer_speedup']:.2f}",
                ]
            )
    print(
        markdown(
            "Mixed precision: Recurrent(precision='bf16') vs fp32, median ms; speed-up = fp32 / bf16",
            ["cell", "B,T,I,H", "train fp32", "train bf16", "speed-up", "infer fp32", "infer bf16", "speed-up"],
            cells,
        ),
        flush=True,
    )
    return rows


class _Adding(nn.Module):
    def __init__(self, cell: str, hidden: int) -> None:
        super().__init__()
        self.rnn, self.head = Recurrent(cell, 2, hidden), nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def adding_accuracy(cell: str, precision: str, steps: int, seed: int = 0) -> float:
    """Validation MSE on the adding problem (T=100) after ``steps`` Adam steps in ``precision``; same data and
    initial weights for every precision."""
    torch.manual_seed(seed)
    model = _Adding(cell, 64)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        x, y = adding_problem(64, 100, generator=gen)
        with autocast(precision, "cpu"):
            loss = nn.functional.mse_loss(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    x, y = adding_problem(1000, 100, generator=torch.Generator().manual_seed(seed + 10_000))
    with torch.no_grad():
        return float(nn.functional.mse_loss(model(x), y))


def etth1_accuracy(precision: str, epochs: int) -> float:
    """Test MSE (scaled series) of ``rnnkit train forecast`` on ETTh1, univariate OT, horizon 24, lookback 96."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", "from rnnkit.cli import app; app()", "train", "forecast"]
        cmd += ["--data", str(DATA / "ett_small" / "ETTh1.csv"), "--target", "OT", "--time-column", "date"]
        cmd += ["--timestep", "96", "--horizon", "24", "--train", "8640", "--val", "2880", "--test", "2880"]
        cmd += ["--epochs", str(epochs), "--precision", precision, "--seed", "0", "--out", f"{tmp}/run", "--quiet"]
        subprocess.run(cmd, check=True, capture_output=True, env=os.environ | {"PYTHONPATH": str(ROOT / "src")})
        metrics = json.loads(Path(f"{tmp}/run/metrics.json").read_text())
    test = metrics.get("test", metrics)
    return float(test["model"]["mse_scaled"])


def accuracy_table(adding_steps: int, etth1_epochs: int) -> dict:
    rows = []
    for cell in ("lstm", "gru"):
        mse = {p: adding_accuracy(cell, p, adding_steps) for p in ("fp32", "bf16")}
        rows.append({"task": f"adding T=100, {cell}, {adding_steps} steps", "metric": "val MSE", **mse})
    if (DATA / "ett_small" / "ETTh1.csv").is_file():
        mse = {p: etth1_accuracy(p, etth1_epochs) for p in ("fp32", "bf16")}
        rows.append({"task": f"ETTh1 OT, horizon 24, {etth1_epochs} epochs", "metric": "test MSE (scaled)", **mse})
    print(
        markdown(
            f"Accuracy with each precision (adding baseline: predicting the mean, MSE {ADDING_BASELINE_MSE:.3f})",
            ["task", "metric", "fp32", "bf16"],
            [[r["task"], r["metric"], f"{r['fp32']:.4f}", f"{r['bf16']:.4f}"] for r in rows],
        ),
        flush=True,
    )
    return {"rows": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    speed_table(SIZES[:1] if args.quick else SIZES, 5 if args.quick else 15)
    accuracy_table(200 if args.quick else 1500, 1 if args.quick else 3)
