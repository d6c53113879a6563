"""Speed of rnnkit's Recurrent against raw torch.nn and a naive Python cell loop, measured side by side.

    python benchmarks/speed.py            # the full grid (~10 minutes on 2 cores)
    python benchmarks/speed.py --quick    # fewer repeats, smallest size only

The machine is shared and noisy, so contenders are timed round-robin (A, B, C, A, B, C, ...) and every number
is a median. "ratio" is how fast rnnkit is relative to the reference, time(reference) / time(rnnkit), taken per
round (the two ran back to back) and then the median over rounds; >= 1 means rnnkit is at least as fast.

Tables:
1. standard cells: Recurrent (impl="auto", the fused path) vs torch.nn.LSTM/GRU/RNN vs a torch.nn.*Cell loop, at
   (B, T, I, H) = (16, 200, 32, 64), (32, 100, 128, 256), (64, 50, 256, 512); uni/bidirectional; with and without
   lengths (random lengths in [T/2, T], packed for torch.nn exactly as a user would); training step
   (forward + backward) and inference (no_grad).
2. cells without a torch kernel (layer-norm LSTM, minGRU, minLSTM) vs the native torch.nn.LSTM at equal H.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import Recurrent

SIZES = [(16, 200, 32, 64), (32, 100, 128, 256), (64, 50, 256, 512)]
TORCH = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn_tanh": nn.RNN}
CELLS = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn_tanh": nn.RNNCell}


def markdown(title: str, headers: list[str], rows: list[list[str]]) -> str:
    """A markdown table (pastes into notes and issues as it is)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([f"\n{title}\n", line(headers), sep, *(line(r) for r in rows)])


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each function, timed round-robin; the order flips every round so that no contender
    always runs first (warm caches) or last."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(times: dict[str, list[float]], reference: str, contender: str) -> float:
    """Median over rounds of time(reference) / time(contender): both were timed back to back in each round, so
    slow drifts of a shared machine cancel out."""
    return statistics.median(a / b for a, b in zip(times[reference], times[contender]))


def medians_ms(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


class NaiveLoop(nn.Module):
    """What a user writes without a layer: torch.nn.*Cell in a Python loop, masking for lengths."""

    def __init__(self, kind: str, input_size: int, hidden: int, bidirectional: bool) -> None:
        super().__init__()
        self.kind = kind
        self.cells = nn.ModuleList(CELLS[kind](input_size, hidden) for _ in range(2 if bidirectional else 1))

    def run(self, cell: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        B, T, _ = x.shape
        h = x.new_zeros(B, cell.hidden_size)
        state = (h, h.clone()) if self.kind == "lstm" else h
        outs = []
        for t in range(T):
            new = cell(x[:, t], state)
            if lengths is not None:
                m = (t < lengths).unsqueeze(1)
                new = (
                    tuple(torch.where(m, a, b) for a, b in zip(new, state))
                    if self.kind == "lstm"
                    else (torch.where(m, new, state))
                )
            state = new
            h = state[0] if self.kind == "lstm" else state
            outs.append(h if lengths is None else h * (t < lengths).unsqueeze(1))
        return torch.stack(outs, 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        out = self.run(self.cells[0], x, lengths)
        if len(self.cells) == 1:
            return out
        if lengths is None:
            back = self.run(self.cells[1], x.flip(1), None).flip(1)
        else:  # reverse each sequence within its length
            idx = torch.arange(x.shape[1])[None, :].expand(x.shape[0], -1)
            n = lengths[:, None]
            rev = torch.where(idx < n, n - 1 - idx, idx)
            gather = rev[..., None].expand(-1, -1, x.shape[2])
            back = self.run(self.cells[1], x.gather(1, gather), lengths)
            back = back.gather(1, rev[..., None].expand(-1, -1, back.shape[2]))
        return torch.cat([out, back], -1)


def torch_forward(module: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    if lengths is None:
        return module(x)[0]
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(module(packed)[0], batch_first=True, total_length=x.shape[1])[0]


def contenders(kind: str, size: tuple[int, ...], bidirectional: bool, with_lengths: bool, naive: bool):
    B, T, I, H = size
    ref = TORCH[kind](I, H, batch_first=True, bidirectional=bidirectional)
    ours = Recurrent.from_torch(ref)
    x = torch.randn(B, T, I)
    lengths = torch.randint(T // 2, T + 1, (B,)) if with_lengths else None
    runs = {
        "torch.nn": lambda: torch_forward(ref, x, lengths),
        "rnnkit": lambda: ours(x, lengths=lengths)[0],
    }
    modules = [ref, ours]
    if naive:
        loop = NaiveLoop(kind, I, H, bidirectional)
        runs["naive loop"] = lambda: loop(x, lengths)
        modules.append(loop)
    return runs, modules


def train_and_infer(runs: dict[str, Callable[[], torch.Tensor]], modules: list[nn.Module], repeats: int):
    def fb(fn):
        def go():
            fn().sum().backward()

        return go

    def inf(fn):
        def go():
            with torch.no_grad():
                fn()

        return go

    for m in modules:
        m.train()
    train = interleaved({k: fb(f) for k, f in runs.items()}, repeats)
    for m in modules:
        m.eval()
    infer = interleaved({k: inf(f) for k, f in runs.items()}, repeats)
    return train, infer


def standard_table(sizes, repeats: int, naive_repeats: int) -> list[dict]:
    rows, cells = [], []
    for size in sizes:
        for kind in TORCH:
            for bidirectional in (False, True):
                for with_lengths in (False, True):
                    torch.manual_seed(0)
                    runs, modules = contenders(kind, size, bidirectional, with_lengths, naive=True)
                    naive = {"naive loop": runs.pop("naive loop")}
                    train, infer = train_and_infer(runs, modules[:2], repeats)
                    ntrain, ninfer = train_and_infer(naive, modules[2:], naive_repeats)
                    row = {
                        "cell": kind,
                        "size": size,
                        "bidirectional": bidirectional,
                        "lengths": with_lengths,
                        "train_ms": medians_ms(train | ntrain),
                        "infer_ms": medians_ms(infer | ninfer),
                        "ratio_train": paired_ratio(train, "torch.nn", "rnnkit"),
                        "ratio_infer": paired_ratio(infer, "torch.nn", "rnnkit"),
                    }
                    rows.append(row)
                    t, i = row["train_ms"], row["infer_ms"]
                    cells.append(
                        [
                            kind,
                            ",".join(map(str, size)),
                            "bi" if bidirectional else "uni",
                            "yes" if with_lengths else "no",
                            *(f"{t[k]:.1f}" for k in ("torch.nn", "rnnkit", "naive loop")),
                            f"{row['ratio_train']:.2f}",
                            *(f"{i[k]:.1f}" for k in ("torch.nn", "rnnkit", "naive loop")),
                            f"{row['ratio_infer']:.2f}",
                        ]
                    )
                    print(" | ".join(cells[-1]), flush=True)
    print(
        markdown(
            "Recurrent (fused path) vs torch.nn vs a naive cell loop: median ms; ratio = median of torch.nn / rnnkit",
            [
                "cell",
                "B,T,I,H",
                "dir",
                "lengths",
                "train torch.nn",
                "train rnnkit",
                "train naive",
                "ratio train",
                "infer torch.nn",
                "infer rnnkit",
                "infer naive",
                "ratio infer",
            ],
            cells,
        )
    )
    return rows


def other_cells_table(sizes, repeats: int) -> list[dict]:
    rows, cells = [], []
    names = ["layernorm_lstm", "mingru", "minlstm"]
    for size in sizes:
        B, T, I, H = size
        torch.manual_seed(0)
        x = torch.randn(B, T, I)
        modules: dict[str, nn.Module] = {"lstm": nn.LSTM(I, H, batch_first=True)}
        modules |= {k: Recurrent(k, I, H) for k in names}
        runs = {k: (lambda m=m, x=x: m(x)[0]) for k, m in modules.items()}
        train, infer = train_and_infer(runs, list(modules.values()), repeats)
        row = {
            "size": size,
            "train_ms": medians_ms(train),
            "infer_ms": medians_ms(infer),
            "ratio_train": {k: paired_ratio(train, "lstm", k) for k in names},
            "ratio_infer": {k: paired_ratio(infer, "lstm", k) for k in names},
        }
        rows.append(row)
        cells.append(
            [
                ",".join(map(str, size)),
                *(f"{row['train_ms'][k]:.1f}" for k in ["lstm", *names]),
                *(f"{row['ratio_train'][k]:.2f}" for k in names),
                *(f"{row['infer_ms'][k]:.1f}" for k in ["lstm", *names]),
                *(f"{row['ratio_infer'][k]:.2f}" for k in names),
            ]
        )
    print(
        markdown(
            "Cells without a torch kernel vs native torch.nn.LSTM at equal H: median ms; ratio = median of LSTM / cell",
            [
                "B,T,I,H",
                "train LSTM",
                "train LN-LSTM",
                "train minGRU",
                "train minLSTM",
                "ratio LN",
                "ratio minGRU",
                "ratio minLSTM",
                "infer LSTM",
                "infer LN-LSTM",
                "infer minGRU",
                "infer minLSTM",
                "ratio LN",
                "ratio minGRU",
                "ratio minLSTM",
            ],
            cells,
        )
    )
    return rows


def environment() -> dict:
    """What the numbers depend on besides the code: torch, threads, CPU, and whether rnnkit's C++ kernels ran
    (without them layer-norm LSTM, minGRU and minLSTM time their slower pure-PyTorch paths)."""
    from rnnkit import _ext

    kernels = _ext.status()
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "kernels": {"used": kernels["built"], **{k: kernels[k] for k in ("name", "variant", "reason")}},
    }


def describe(env: dict) -> str:
    """The header line printed above the tables."""
    k = env["kernels"]
    kernels = f"used ({k['name']})" if k["used"] else f"NOT used, pure-PyTorch fallback ({k['reason']})"
    return f"torch {env['torch']}, {env['threads']} threads, {env['machine']}, C++ kernels: {kernels}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smallest size, few repeats")
    parser.add_argument("--repeats", type=int, default=21, help="timed rounds per contender (median)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results", help="directory for the JSON record"
    )
    args = parser.parse_args()
    sizes = SIZES[:1] if args.quick else SIZES
    repeats = 5 if args.quick else args.repeats
    env = environment()
    print(describe(env), flush=True)
    standard = standard_table(sizes, repeats, max(3, repeats // 3))
    others = other_cells_table(sizes, repeats)
    worst_train = min(r["ratio_train"] for r in standard)
    worst_infer = min(r["ratio_infer"] for r in standard)
    print(f"fused path: worst ratio train {worst_train:.2f}, infer {worst_infer:.2f} (target >= 0.97)")
    for k in ("layernorm_lstm", "mingru", "minlstm"):
        print(
            f"{k}: training speed vs native LSTM, worst {min(r['ratio_train'][k] for r in others):.2f} (target >= 0.5)"
        )
    if not args.quick:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"speed-{date.today().isoformat()}.json"
        path.write_text(
            json.dumps(
                {
                    **env,
                    "standard": standard,
                    "other_cells": others,
                },
                indent=1,
            )
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
