"""How far SMS spam's two targets of issue #19 are from any decision threshold.

#19 asks the default pipeline to reach, on SMS spam, at least the macro-F1
and at least the balanced accuracy of both ``LinearSVC(class_weight=
"balanced")`` and ``LogisticRegression(class_weight="balanced")`` (the
"bars": the better reference on each metric). A binary classifier's
predictions are a threshold on a score, so this benchmark asks how close
*any* threshold comes. For every contender of ``bench_text.py`` it fits
the same pipeline on SMS spam's folds (``bench_text.load_splits``), scores
the test rows (``decision_function``, else the log-odds of
``predict_proba``) and reports, over the folds:

- ``macro_f1`` / ``balanced_accuracy``: at the contender's own threshold;
- ``auc``: the mean ROC AUC of the score, the ranking a threshold can use;
- ``best_macro_f1``: the best mean macro-F1 of one threshold shared by the
  folds, chosen on the test rows themselves (an oracle, an upper bound);
- ``closest_f1`` / ``closest_bacc`` / ``shortfall``: the shared threshold
  whose worse margin to the two bars is largest, its two metrics and that
  margin (negative: no threshold meets both bars).

Run ``python benchmarks/bench_sms_threshold.py`` (``--contenders``: names
of ``bench_text.py`` beside the two references, default ERM and
``LDAM-DRW``; ``--quick``: the first fold only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from bench_real import DEFAULT_DATA_HOME
from bench_text import CONTENDERS, load_splits, vectorizer
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline

#: The references that set the bars; always fitted.
REFERENCES = ("LinearSVC-bal", "LR-bal")
POSITIVE = "spam"


def spam_score(model, X) -> np.ndarray:
    """A score that grows with the spam class: the decision function or the log-odds."""
    if hasattr(model, "decision_function"):
        score = model.decision_function(X)
        return score if model.classes_[1] == POSITIVE else -score
    proba = np.clip(model.predict_proba(X), np.finfo(np.float64).tiny, None)
    spam = model.classes_ == POSITIVE
    return np.log(proba[:, spam][:, 0]) - np.log(proba[:, ~spam][:, 0])


def threshold_curves(score, positive, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Macro-F1 and balanced accuracy of ``score > t`` for every ``t`` of ``thresholds``."""
    pos, neg = np.sort(score[positive]), np.sort(score[~positive])
    tp = len(pos) - np.searchsorted(pos, thresholds, side="right")
    fp = len(neg) - np.searchsorted(neg, thresholds, side="right")
    fn, tn = len(pos) - tp, len(neg) - fp
    f1_pos = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    f1_neg = 2 * tn / np.maximum(2 * tn + fn + fp, 1)
    return (f1_pos + f1_neg) / 2, (tp / len(pos) + tn / len(neg)) / 2


def fold_scores(name: str, splits) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(score, is spam, predicted spam) on each split's test rows."""
    out = []
    for X_train, y_train, X_test, y_test in splits:
        model = make_pipeline(vectorizer(), CONTENDERS[name]()).fit(X_train, y_train)
        out.append(
            (spam_score(model, X_test), y_test == POSITIVE, model.predict(X_test) == POSITIVE)
        )
    return out


def own_threshold(folds) -> dict:
    """Mean macro-F1 and balanced accuracy of the contender's own predictions."""
    own = [threshold_curves(pred.astype(float), spam, np.array([0.5])) for _, spam, pred in folds]
    return {
        "macro_f1": float(np.mean([o[0][0] for o in own])),
        "balanced_accuracy": float(np.mean([o[1][0] for o in own])),
    }


def summarize(folds, bars: tuple[float, float]) -> dict:
    """The own-threshold metrics, the AUC and the best shared thresholds of one contender."""
    thresholds = np.concatenate([[-np.inf], np.unique(np.concatenate([s for s, _, _ in folds]))])
    curves = [threshold_curves(score, spam, thresholds) for score, spam, _ in folds]
    f1 = np.mean([c[0] for c in curves], axis=0)
    bacc = np.mean([c[1] for c in curves], axis=0)
    margin = np.minimum(f1 - bars[0], bacc - bars[1])
    best = int(np.argmax(margin))
    return {
        **own_threshold(folds),
        "auc": float(np.mean([roc_auc_score(spam, score) for score, spam, _ in folds])),
        "best_macro_f1": float(f1.max()),
        "closest_f1": float(f1[best]),
        "closest_bacc": float(bacc[best]),
        "shortfall": float(margin[best]),
    }


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", type=Path, default=DEFAULT_DATA_HOME)
    parser.add_argument("--contenders", default="ERM,LDAM-DRW", help="names of bench_text.py")
    parser.add_argument("--quick", action="store_true", help="the first fold only")
    args = parser.parse_args(argv)
    names = [n for n in args.contenders.split(",") if n and n not in REFERENCES]
    unknown = sorted(set(names) - set(CONTENDERS))
    if unknown:
        parser.error(f"unknown contenders {unknown}; choose from {', '.join(CONTENDERS)}")
    splits = load_splits("sms_spam", args.data_home, n_splits=1 if args.quick else 3)
    folds = {name: fold_scores(name, splits) for name in (*REFERENCES, *names)}
    own = {name: own_threshold(folds[name]) for name in REFERENCES}
    bars = tuple(max(own[r][m] for r in REFERENCES) for m in ("macro_f1", "balanced_accuracy"))
    table = pd.DataFrame({name: summarize(f, bars) for name, f in folds.items()}).T
    print(f"bars: macro-F1 {bars[0]:.4f}, balanced accuracy {bars[1]:.4f}")
    print(table.to_markdown(floatfmt=".4f"))
    return table


if __name__ == "__main__":
    main()
