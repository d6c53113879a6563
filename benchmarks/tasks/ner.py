"""NER on CoNLL-2003 English: the published protocol, end to end through rnnkit's public API.

Train on train.txt, select the model on valid.txt (early stopping on entity F1), report entity F1 (seqeval, IOB2
tags as in the files) on test.txt, with no pretrained vectors: exactly what

    rnnkit train tag --data conll2003/train.txt --dev conll2003/valid.txt --test conll2003/test.txt --out runs/ner

does with the default recipe (words, casing and a char CNN -> BiLSTM -> CRF constrained to IOB2), plus a training
time budget. Also scored on the same test set: the most-frequent-tag-per-word baseline. Writes
``benchmarks/results/ner-<date>.json``: the metric, full wall time, epochs, the config, the rnnkit commit and the
machine (cores, load).

    python benchmarks/tasks/ner.py                 # about 90 minutes on 2 busy CPU cores
    python benchmarks/tasks/ner.py --resume        # continue an interrupted run from its last checkpoint
    python benchmarks/tasks/ner.py --sample 3000   # the small-corpus check: 3,000 random training sentences,
                                                   # default length (no budget), scored on valid and test
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import date
from pathlib import Path

import torch
from _record import ROOT, commit, machine

from rnnkit.config import to_dict
from rnnkit.data import data_dir
from rnnkit.tasks.tag import TagConfig, Tagger, read_sentences


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--minutes", type=float, default=80.0, help="training time budget on the full corpus (none with --sample)"
    )
    ap.add_argument("--run", type=Path, default=ROOT / "runs" / "bench-ner", help="run directory (checkpoints)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: small models on a busy machine)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="continue the interrupted run in --run")
    ap.add_argument("--sample", type=int, help="train on this many random training sentences (a small corpus)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tic, load_before = time.time(), machine()["load_1_5_15"]
    conll = data_dir() / "conll2003"
    cfg = TagConfig()
    cfg.trainer.time_budget = None if args.sample else args.minutes
    cfg.trainer.seed = args.seed
    train = conll / "train.txt"
    name = "ner"
    if args.sample:  # a seeded sample of the training sentences, written beside the run (never into the repo)
        name = f"ner-sample{args.sample}"
        args.run = args.run.with_name(args.run.name + f"-sample{args.sample}")
        sentences = read_sentences(train, cfg)
        chosen = random.Random(args.seed).sample(range(len(sentences)), args.sample)
        train = args.run.with_name(args.run.name + "-train.conll")
        train.parent.mkdir(parents=True, exist_ok=True)
        blocks = ["\n".join(f"{w} {t}" for w, t in zip(sentences[i].tokens, sentences[i].tags)) for i in chosen]
        train.write_text("\n\n".join(blocks) + "\n")
    task, metrics = Tagger.train(
        cfg,
        train,
        args.run,
        dev=conll / "valid.txt",
        test=conll / "test.txt",
        overwrite=not args.resume,
        resume=args.resume,
    )
    wall = time.time() - tic
    # the report's baseline: each word's most frequent training tag (unseen words: O, the commonest tag)
    baseline = metrics["test"]["baseline"]["most_frequent_tag_f1"]
    result = {
        "task": name,
        "data": "CoNLL-2003 English (IOB2), train 14,041 / valid 3,250 / test 3,453 sentences"
        + (f"; trained on a seeded sample of {args.sample} training sentences" if args.sample else ""),
        "protocol": "train on train, model selection (early stopping) on valid entity F1, entity F1 (seqeval) on "
        "test; no pretrained vectors",
        "metric": {"test_f1": metrics["test"]["f1"], "val_f1": metrics["val"]["f1"]},
        "test": metrics["test"],
        "val": metrics["val"],
        "baseline_most_frequent_tag_f1": baseline,
        "published": {"lstm_crf_random_init": 83.63, "lstm_crf_pretrained": 90.94, "source": "Lample et al. 2016"},
        "seconds": round(wall, 1),
        "seconds_note": "this session's wall time (reading, training, evaluation); training seconds over every "
        "session are in training.seconds",
        "epochs": metrics["training"]["epochs"],
        "training": metrics["training"],
        "config": to_dict(task.cfg),
        "command": "python benchmarks/tasks/ner.py" + (f" --sample {args.sample}" if args.sample else ""),
        # a sample trains as a user's small corpus would: no time budget (--minutes applies to the full corpus)
        "cli_equivalent": f"rnnkit train tag --data {train if args.sample else 'conll2003/train.txt'} "
        "--dev conll2003/valid.txt --test conll2003/test.txt"
        + ("" if args.sample else f" --time-budget {args.minutes:g}")
        + f" --out runs/{name}",
        "rnnkit_commit": commit(),
        "machine": {**machine(), "load_before": load_before},
        "resumed": args.resume,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}-{date.today().isoformat()}.json"
    path.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(
        f"{name}: test F1 {100 * metrics['test']['f1']:.2f} (valid {100 * metrics['val']['f1']:.2f}; most frequent tag "
        f"{100 * baseline:.2f}) in {wall / 60:.1f} min; wrote {path}"
    )


if __name__ == "__main__":
    main()
