"""Layer tables of benchmarks/speed.py: lengths (every standard cell), the GRU against the LSTM, cells without a torch
kernel. Training step = forward + backward of ``output.sum()``; inference = forward under no_grad. Ratios are paired
medians (timing.paired_ratio): time(reference) / time(contender), >= 1 means the contender is at least as fast."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import Recurrent
from timing import interleaved, markdown, medians_ms, paired_ratio

SIZES = [(16, 200, 32, 64), (32, 100, 128, 256), (64, 50, 256, 512)]
TORCH = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn_tanh": nn.RNN}


def torch_forward(module: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """torch.nn as a user runs it: padded batch, or packed with lengths."""
    if lengths is None:
        return module(x)[0]
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(module(packed)[0], batch_first=True, total_length=x.shape[1])[0]


def train_and_infer(
    runs: dict[str, Callable[[], torch.Tensor]], modules: list[nn.Module], repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    def fb(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        return lambda: fn().sum().backward()

    def inf(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def go() -> None:
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


def size_str(size: tuple[int, ...]) -> str:
    return ",".join(map(str, size))


def lengths_table(sizes: list[tuple[int, ...]], repeats: int) -> list[dict]:
    """Per cell, size and direction: rnnkit and torch.nn, each without and with lengths (random in [T/2, T];
    packed for torch.nn as a user would)."""
    rows, cells = [], []
    for size in sizes:
        B, T, I, H = size
        for kind, cls in TORCH.items():
            for bidirectional in (False, True):
                torch.manual_seed(0)
                ref = cls(I, H, batch_first=True, bidirectional=bidirectional)
                ours = Recurrent.from_torch(ref)
                x, lengths = torch.randn(B, T, I), torch.randint(T // 2, T + 1, (B,))
                runs = {
                    "torch.nn": lambda ref=ref, x=x: torch_forward(ref, x, None),
                    "torch.nn lengths": lambda ref=ref, x=x, n=lengths: torch_forward(ref, x, n),
                    "rnnkit": lambda m=ours, x=x: m(x)[0],
                    "rnnkit lengths": lambda m=ours, x=x, n=lengths: m(x, lengths=n)[0],
                }
                train, infer = train_and_infer(runs, [ref, ours], repeats)
                row = {"cell": kind, "size": size, "bidirectional": bidirectional}
                for mode, times in (("train", train), ("infer", infer)):
                    row[f"{mode}_ms"] = medians_ms(times)
                    row[f"{mode}_vs_torch"] = paired_ratio(times, "torch.nn", "rnnkit")
                    row[f"{mode}_lengths_cost"] = 1.0 / paired_ratio(times, "rnnkit", "rnnkit lengths")
                    row[f"{mode}_lengths_vs_torch_packed"] = paired_ratio(times, "torch.nn lengths", "rnnkit lengths")
                rows.append(row)
                t = row["train_ms"]
                cells.append(
                    [
                        kind,
                        size_str(size),
                        "bi" if bidirectional else "uni",
                        *(f"{t[k]:.1f}" for k in runs),
                        f"{row['train_vs_torch']:.2f}",
                        f"{row['train_lengths_cost']:.2f}",
                        f"{row['train_lengths_vs_torch_packed']:.1f}",
                        f"{row['infer_lengths_cost']:.2f}",
                        f"{row['infer_lengths_vs_torch_packed']:.1f}",
                    ]
                )
                print(" | ".join(cells[-1]), flush=True)
    print(
        markdown(
            "Lengths: training step, median ms. vs torch = torch.nn / rnnkit without lengths; lengths cost = "
            "rnnkit with / without lengths (target <= 1.3); vs packed = torch.nn packed / rnnkit with lengths",
            [
                "cell",
                "B,T,I,H",
                "dir",
                "torch.nn",
                "torch.nn packed",
                "rnnkit",
                "rnnkit lengths",
                "vs torch",
                "lengths cost",
                "vs packed",
                "infer lengths cost",
                "infer vs packed",
            ],
            cells,
        ),
        flush=True,
    )
    return rows


def gru_table(sizes: list[tuple[int, ...]], repeats: int) -> list[dict]:
    """rnnkit's GRU (C++ kernel) against torch.nn.LSTM (oneDNN) and torch.nn.GRU at equal H, no lengths."""
    rows, cells = [], []
    for size in sizes:
        B, T, I, H = size
        for bidirectional in (False, True):
            torch.manual_seed(0)
            lstm = nn.LSTM(I, H, batch_first=True, bidirectional=bidirectional)
            gru = nn.GRU(I, H, batch_first=True, bidirectional=bidirectional)
            ours = Recurrent.from_torch(gru)
            x = torch.randn(B, T, I)
            runs = {
                "torch.nn.LSTM": lambda m=lstm, x=x: m(x)[0],
                "torch.nn.GRU": lambda m=gru, x=x: m(x)[0],
                "rnnkit GRU": lambda m=ours, x=x: m(x)[0],
            }
            train, infer = train_and_infer(runs, [lstm, gru, ours], repeats)
            row = {"size": size, "bidirectional": bidirectional}
            for mode, times in (("train", train), ("infer", infer)):
                row[f"{mode}_ms"] = medians_ms(times)
                row[f"{mode}_vs_lstm"] = paired_ratio(times, "torch.nn.LSTM", "rnnkit GRU")
                row[f"{mode}_vs_torch_gru"] = paired_ratio(times, "torch.nn.GRU", "rnnkit GRU")
            rows.append(row)
            t, i = row["train_ms"], row["infer_ms"]
            cells.append(
                [
                    size_str(size),
                    "bi" if bidirectional else "uni",
                    *(f"{t[k]:.1f}" for k in runs),
                    f"{row['train_vs_lstm']:.2f}",
                    f"{row['train_vs_torch_gru']:.2f}",
                    *(f"{i[k]:.1f}" for k in runs),
                    f"{row['infer_vs_lstm']:.2f}",
                    f"{row['infer_vs_torch_gru']:.2f}",
                ]
            )
    print(
        markdown(
            "GRU kernel: median ms; vs LSTM = torch.nn.LSTM / rnnkit GRU (target >= 1.0 in training), "
            "vs GRU = torch.nn.GRU / rnnkit GRU",
            [
                "B,T,I,H",
                "dir",
                "train LSTM",
                "train torch GRU",
                "train rnnkit GRU",
                "vs LSTM",
                "vs GRU",
                "infer LSTM",
                "infer torch GRU",
                "infer rnnkit GRU",
                "vs LSTM",
                "vs GRU",
            ],
            cells,
        ),
        flush=True,
    )
    return rows


OTHER = ["layernorm_lstm", "mingru", "minlstm"]


def other_cells_table(sizes: list[tuple[int, ...]], repeats: int) -> list[dict]:
    """Cells without a torch kernel against the native torch.nn.LSTM at equal H."""
    rows, cells = [], []
    for size in sizes:
        B, T, I, H = size
        torch.manual_seed(0)
        x = torch.randn(B, T, I)
        modules: dict[str, nn.Module] = {"lstm": nn.LSTM(I, H, batch_first=True)}
        modules |= {k: Recurrent(k, I, H) for k in OTHER}
        runs = {k: (lambda m=m, x=x: m(x)[0]) for k, m in modules.items()}
        train, infer = train_and_infer(runs, list(modules.values()), repeats)
        row = {
            "size": size,
            "train_ms": medians_ms(train),
            "infer_ms": medians_ms(infer),
            "ratio_train": {k: paired_ratio(train, "lstm", k) for k in OTHER},
            "ratio_infer": {k: paired_ratio(infer, "lstm", k) for k in OTHER},
        }
        rows.append(row)
        cells.append(
            [
                size_str(size),
                *(f"{row['train_ms'][k]:.1f}" for k in ["lstm", *OTHER]),
                *(f"{row['ratio_train'][k]:.2f}" for k in OTHER),
                *(f"{row['infer_ms'][k]:.1f}" for k in ["lstm", *OTHER]),
                *(f"{row['ratio_infer'][k]:.2f}" for k in OTHER),
            ]
        )
    print(
        markdown(
            "Cells without a torch kernel vs native torch.nn.LSTM at equal H: median ms; ratio = LSTM / cell "
            "(targets: layer-norm LSTM >= 0.5, minGRU/minLSTM >= 1.0)",
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
        ),
        flush=True,
    )
    return rows
