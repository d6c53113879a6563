"""Streaming step overhead: ``Recurrent.step`` (checked, and unchecked as a stream after its first step) against a
raw ``torch.nn.LSTMCell`` / ``GRUCell`` call with the same weights, at B = 1 and B = 1000, H = 128, no grad.

    python benchmarks/speed_step.py

Ratio = median over rounds of time(raw cell) / time(step); >= 1 means the step is at least as fast as the raw cell.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from rnnkit import Recurrent
from timing import interleaved, markdown, medians_us, paired_ratio

CELLS = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}


def step_table(repeats: int = 21, hidden: int = 128, batches: tuple[int, ...] = (1, 1000)) -> list[dict]:
    rows, cells = [], []
    for kind, cls in CELLS.items():
        for B in batches:
            torch.manual_seed(0)
            cell = cls(hidden, hidden)
            layer = Recurrent(kind, hidden, hidden).eval()
            layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
            x = torch.randn(B, hidden)
            state = layer.initial_state(B)
            hx = (state[0][0], state[1][0]) if kind == "lstm" else state[0][0]
            inner = 200 if B == 1 else 2
            with torch.no_grad():
                times = interleaved(
                    {
                        "raw cell": lambda cell=cell, x=x, hx=hx: cell(x, hx),
                        "step": lambda layer=layer, x=x, s=state: layer.step(x, s),
                        "step unchecked": lambda layer=layer, x=x, s=state: layer.step(x, s, check=False),
                    },
                    repeats,
                    warmup=3,
                    inner=inner,
                )
            row = {
                "cell": kind,
                "batch": B,
                "hidden": hidden,
                "us": medians_us(times),
                "ratio": paired_ratio(times, "raw cell", "step"),
                "ratio_unchecked": paired_ratio(times, "raw cell", "step unchecked"),
            }
            rows.append(row)
            us = row["us"]
            cells.append(
                [
                    kind,
                    str(B),
                    *(f"{us[k]:.1f}" for k in ("raw cell", "step", "step unchecked")),
                    f"{row['ratio']:.2f}",
                    f"{row['ratio_unchecked']:.2f}",
                ]
            )
    print(
        markdown(
            f"Recurrent.step vs a raw torch.nn cell call, H={hidden}, no grad: median us; ratio = raw / step "
            "(target >= 0.85 at B=1, >= 0.95 at B=1000)",
            ["cell", "B", "raw cell", "step", "step unchecked", "ratio", "ratio unchecked"],
            cells,
        ),
        flush=True,
    )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=21)
    step_table(parser.parse_args().repeats)
