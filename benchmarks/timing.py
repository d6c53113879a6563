"""Timing helpers shared by the speed benchmarks: round-robin timing, paired ratios, medians, markdown tables.

The machine is shared and noisy, so contenders are timed round-robin (A, B, C, A, B, C, ...) and every number is a
median. A ratio is time(reference) / time(contender) taken per round (the two ran back to back) and then the median
over rounds; >= 1 means the contender is at least as fast as the reference.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def markdown(title: str, headers: list[str], rows: list[list[str]]) -> str:
    """A markdown table (pastes into notes and issues as it is)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([f"\n{title}\n", line(headers), sep, *(line(r) for r in rows)])


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2, inner: int = 1
) -> dict[str, list[float]]:
    """Seconds per call of each function, timed round-robin; the order flips every round so that no contender
    always runs first (warm caches) or last. ``inner`` calls are timed together (for microsecond-scale calls)."""
    for _ in range(warmup):
        for fn in fns.values():
            for _ in range(inner):
                fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            fn = fns[name]
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            times[name].append((time.perf_counter() - start) / inner)
    return times


def paired_ratio(times: dict[str, list[float]], reference: str, contender: str) -> float:
    """Median over rounds of time(reference) / time(contender): both were timed back to back in each round, so
    slow drifts of a shared machine cancel out."""
    return statistics.median(a / b for a, b in zip(times[reference], times[contender]))


def medians_ms(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def medians_us(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: 1e6 * statistics.median(v) for k, v in times.items()}
