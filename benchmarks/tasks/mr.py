"""Sentiment on MR (rt-polarity, Pang & Lee 2005): 10-fold cross-validation, end to end through rnnkit's public API.

The 10,662 snippets (Latin-1, one per line, one file per class) are cut into 10 stratified folds (seeded). For each
fold, a tenth of its training part is held out as validation data (early stopping and the classifier's
validation-chosen options; never the fold's test part; once the n-gram bag's shares are chosen, the bag counts
the validation texts too, as any training text, and its regression fits them), and the default recipe is trained
and scored on the test part, exactly as

    rnnkit train classify --data train.csv --dev val.csv --test test.csv --out runs/mr/fold-k

does (the fold's three CSV files are written into the run directory, never into the repository). No pretrained
vectors. The same folds also score the TF-IDF(1,2) + logistic regression baseline (scikit-learn). Writes
``benchmarks/results/mr-<date>.json``: mean ± std accuracy over the folds, every fold, full wall time, the config,
the rnnkit commit and the machine (cores, load).

    python benchmarks/tasks/mr.py              # about 30 minutes on 2 busy CPU cores
    python benchmarks/tasks/mr.py --resume     # keep finished folds, continue an interrupted one
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _record import ROOT, commit, machine

from rnnkit.config import to_dict
from rnnkit.data import data_dir
from rnnkit.data.cv import stratified_folds
from rnnkit.data.readers import read_labelled_files
from rnnkit.tasks.classify import Classifier, ClassifyConfig


def tfidf_baseline(texts: list[str], labels: list[str], folds: list) -> list[float]:
    """TF-IDF of words and word pairs + logistic regression (scikit-learn defaults), trained on each fold's
    training and validation parts, scored on its test part."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels)
    scores = []
    for f in folds:
        train = f.train + f.val
        vec = TfidfVectorizer(ngram_range=(1, 2))
        model = LogisticRegression(max_iter=1000).fit(vec.fit_transform([texts[i] for i in train]), y[train])
        scores.append(float((model.predict(vec.transform([texts[i] for i in f.test])) == y[f.test]).mean()))
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--run", type=Path, default=ROOT / "runs" / "bench-mr", help="run directory (one per fold)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: small models on a busy machine)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="keep finished folds in --run, resume an interrupted one")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tic, load_before = time.time(), machine()["load_1_5_15"]
    mr = data_dir() / "mr_polarity"
    texts, labels = read_labelled_files([mr / "rt-polarity.pos", mr / "rt-polarity.neg"], "latin-1")
    folds = stratified_folds(labels, args.folds, val_fraction=0.1, seed=args.seed)
    cfg = ClassifyConfig()
    cfg.trainer.seed = args.seed
    rows = []
    for f in folds:
        out = args.run / f"fold-{f.index}"
        done = out / "metrics.json"
        if args.resume and done.is_file():
            metrics = json.loads(done.read_text())
            print(f"fold {f.index}: done before, test accuracy {metrics['test']['accuracy']:.4f}", flush=True)
        else:
            parts = out.parent / f"data-{f.index}"  # the fold's CSV files, beside (not inside) the run directory
            parts.mkdir(parents=True, exist_ok=True)
            for name, idx in (("train", f.train), ("val", f.val), ("test", f.test)):
                frame = pd.DataFrame({"text": [texts[i] for i in idx], "label": [labels[i] for i in idx]})
                frame.to_csv(parts / f"{name}.csv", index=False)
            resume = args.resume and (out / "checkpoint").exists()
            started = time.time()
            _, metrics = Classifier.train(
                cfg,
                parts / "train.csv",
                out,
                dev=parts / "val.csv",
                test=parts / "test.csv",
                overwrite=not resume,
                resume=resume,
            )
            print(
                f"fold {f.index}: test accuracy {metrics['test']['accuracy']:.4f} "
                f"({metrics['training']['epochs']} epochs, {time.time() - started:.0f} s; "
                f"{time.time() - tic:.0f} s so far)",
                flush=True,
            )
        rows.append({"fold": f.index, "accuracy": metrics["test"]["accuracy"], "training": metrics["training"]})
    acc = np.array([r["accuracy"] for r in rows])
    baseline = np.array(tfidf_baseline(texts, labels, folds))
    wall = time.time() - tic
    result = {
        "task": "mr",
        "data": "MR sentence polarity v1.0 (rt-polarity.pos/neg, Latin-1), 5,331 + 5,331 snippets",
        "protocol": f"{args.folds}-fold stratified cross-validation (seed {args.seed}); per fold a stratified 10% of "
        "the training part is validation data (early stopping, the n-gram bag's shares; then counted by the bag "
        "and its regression); "
        "accuracy on the fold's test part; "
        "no pretrained vectors",
        "metric": {
            "accuracy_mean": float(acc.mean()),
            "accuracy_std": float(acc.std()),
            "accuracy_median": float(np.median(acc)),
        },
        "folds": rows,
        "baseline_tfidf_lr": {"mean": float(baseline.mean()), "std": float(baseline.std()), "folds": baseline.tolist()},
        "published": {"nbsvm_bi": 79.4, "cnn_rand": 76.1, "source": "Wang & Manning 2012; Kim 2014"},
        "seconds": round(wall, 1),
        "seconds_note": "this session's wall time for every fold (reading, training, evaluation, the baseline)",
        "epochs": [r["training"]["epochs"] for r in rows],
        "config": to_dict(cfg),
        "command": "python benchmarks/tasks/mr.py",
        "rnnkit_commit": commit(),
        "machine": {**machine(), "load_before": load_before},
        "resumed": args.resume,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"mr-{date.today().isoformat()}.json"
    path.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(
        f"MR {args.folds}-fold accuracy {100 * acc.mean():.2f} ± {100 * acc.std():.2f} (TF-IDF+LR "
        f"{100 * baseline.mean():.2f} ± {100 * baseline.std():.2f}) in {wall / 60:.1f} min; wrote {path}"
    )


if __name__ == "__main__":
    main()
