"""Decoding speed: ``rnnkit predict`` on Multi30k val (1,014 sentences) with beam 5, a baseline commit vs this tree.

    python benchmarks/decoding.py --run runs/de-en            # a trained translate run
    python benchmarks/decoding.py                             # trains one first into runs/bench-de-en (~5 min)
                                                              # with the baseline tree, so both trees read it

Both trees run the same command on the same run directory in fresh processes, round-robin, ``--repeats`` times
each: the baseline from ``git archive BASELINE src`` (default: the commit before issue 13's decoding work) on
``PYTHONPATH``, this tree from ``src/``. Reported: median seconds of the whole command (start-up included),
sentences per second, their paired ratio, and whether the two wrote byte-identical translations. The start-up
(importing torch, loading the run) costs both trees the same 2-5 s, so the search itself is also timed apart:
``Translator.translate`` on the same sentences in a fresh process per tree (CPU seconds, ``decode_only``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from timing import markdown

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "bc2901e"  # main before issue 13 (beam search with a Python loop over inputs and beams)
DATA = Path(os.environ.get("RNNKIT_DATA", ROOT.parent / "shared" / "data")) / "multi30k_de_en"
CLI = "from rnnkit.cli import app; app()"


def baseline_tree(rev: str, into: Path) -> Path:
    """``src/`` of commit ``rev`` extracted into ``into``; returns the directory to put on PYTHONPATH."""
    archive = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, check=True, capture_output=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    path = into / "archive.tar"
    path.write_bytes(archive)
    with tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def train_run(out: Path, baseline: str = BASELINE, baseline_src: Path | None = None) -> None:
    """A small translation model on Multi30k (two epochs of the task's defaults; BLEU is beside the point), trained
    by the baseline tree: both trees must read the run, and rnnkit reads runs of older versions (a run of this tree
    has config options the baseline does not know)."""
    dev = out.parent / "bench-dev"
    dev.mkdir(parents=True, exist_ok=True)
    for side in ("de", "en"):
        with gzip.open(DATA / f"val.{side}.gz", "rt", encoding="utf-8") as fh:
            (dev / f"dev.{side}").write_text("".join(next(fh) for _ in range(100)))
    cmd = [sys.executable, "-c", CLI, "train", "translate", "--src", str(DATA / "train.de.gz")]
    cmd += ["--tgt", str(DATA / "train.en.gz"), "--dev-src", str(dev / "dev.de"), "--dev-tgt", str(dev / "dev.en")]
    cmd += ["--out", str(out), "--epochs", "2", "--quiet", "--overwrite"]
    with tempfile.TemporaryDirectory() as tmp:
        src = baseline_src or baseline_tree(baseline, Path(tmp) / "baseline")
        subprocess.run(cmd, check=True, env=os.environ | {"PYTHONPATH": str(src)})


def run_predict(pythonpath: Path, run: Path, data: Path, beam: int, out: Path) -> float:
    """Seconds for one ``rnnkit predict`` in a fresh process."""
    cmd = [sys.executable, "-c", CLI, "predict", str(run), "--data", str(data), "--beam", str(beam)]
    cmd += ["--out", str(out), "--overwrite"]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=os.environ | {"PYTHONPATH": str(pythonpath)}, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


DECODE_ONLY = """
import sys, time
import torch
torch.set_num_threads(1)
import rnnkit
task = rnnkit.load(sys.argv[1])
sentences = open(sys.argv[2], encoding="utf-8").read().splitlines()
start = time.process_time()
task.translate(sentences, int(sys.argv[3]))
print(time.process_time() - start)
"""


def run_decode_only(pythonpath: Path, run: Path, data: Path, beam: int) -> float:
    """CPU seconds of ``Translator.translate`` alone (no start-up, no writing) in a fresh process."""
    cmd = [sys.executable, "-c", DECODE_ONLY, str(run), str(data), str(beam)]
    done = subprocess.run(cmd, env=os.environ | {"PYTHONPATH": str(pythonpath)}, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"decode-only run failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.split()[-1])


def measure(
    run: Path, baseline: str = BASELINE, beam: int = 5, repeats: int = 3, baseline_src: Path | None = None
) -> dict:
    """Time both trees round-robin; returns the record written into the speed JSON. ``baseline_src``: an extracted
    ``src/`` of the baseline commit to use instead of ``git archive`` (for a copy of the tree outside git)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "val.de"
        with gzip.open(DATA / "val.de.gz", "rt", encoding="utf-8") as fh:
            data.write_text(fh.read())
        n = len(data.read_text().splitlines())
        base = baseline_src or baseline_tree(baseline, tmp_path / "baseline")
        trees = {"baseline": base, "now": ROOT / "src"}
        times: dict[str, list[float]] = {k: [] for k in trees}
        cpu: dict[str, list[float]] = {k: [] for k in trees}
        for r in range(repeats):
            for name in list(trees) if r % 2 == 0 else list(trees)[::-1]:
                times[name].append(run_predict(trees[name], run, data, beam, tmp_path / f"{name}.txt"))
                cpu[name].append(run_decode_only(trees[name], run, data, beam))
        identical = (tmp_path / "baseline.txt").read_bytes() == (tmp_path / "now.txt").read_bytes()
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = statistics.median(a / b for a, b in zip(times["baseline"], times["now"]))
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    cpu_ratio = statistics.median(a / b for a, b in zip(cpu["baseline"], cpu["now"]))
    record = {
        "run": str(run),
        "sentences": n,
        "beam": beam,
        "baseline": baseline,
        "seconds": med,
        "sentences_per_second": {k: n / v for k, v in med.items()},
        "ratio": ratio,
        "identical_outputs": identical,
        "decode_only": {
            "cpu_seconds": cpu_med,
            "sentences_per_second": {k: n / v for k, v in cpu_med.items()},
            "ratio": cpu_ratio,
        },
    }
    rows = [
        [
            name,
            f"{med[name]:.1f}",
            f"{n / med[name]:.1f}",
            f"{ratio:.2f}" if name == "now" else "1.00",
            f"{cpu_med[name]:.1f}",
            f"{n / cpu_med[name]:.1f}",
            f"{cpu_ratio:.2f}" if name == "now" else "1.00",
        ]
        for name in trees
    ]
    title = (
        f"rnnkit predict, Multi30k val ({n} sentences), beam {beam}: {baseline} vs this tree, median of {repeats} "
        f"(whole command); identical translations: {'yes' if identical else 'NO'}"
    )
    head = ["tree", "seconds", "sentences/s", "speed-up", "search CPU s", "search sentences/s", "search speed-up"]
    print(markdown(title, head, rows), flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "bench-de-en", help="a trained translate run")
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, help="an extracted src/ of the baseline (instead of git)")
    args = parser.parse_args()
    if not (args.run / "model" / "config.json").is_file():
        print(f"no trained run at {args.run}: training one (two epochs)", flush=True)
        train_run(args.run, args.baseline, args.baseline_src)
    print(json.dumps(measure(args.run, args.baseline, args.beam, args.repeats, args.baseline_src), indent=1))


if __name__ == "__main__":
    main()
