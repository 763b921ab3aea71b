"""Compare imbalance methods on one data set: the logic behind ``ldam-sklearn compare``.

The command-line parsing lives in :mod:`ldam_sklearn.cli`; this subpackage
holds what it runs, usable from Python as well:

1. a loader of :mod:`~ldam_sklearn.compare.data` builds a :class:`ComparisonData`
   — a training set, a held-out test set and one preprocessing transformer
   shared by every method of the run;
2. :func:`run_comparison` (:mod:`~ldam_sklearn.compare.run`) fits every method
   of :data:`METHODS` (:mod:`~ldam_sklearn.compare.methods`) on it for each
   seed and scores it on the test set (:mod:`~ldam_sklearn.compare.metrics`),
   returning a JSON-ready report;
3. :func:`format_table`, :func:`save_report` and :func:`plot_per_class_recall`
   (:mod:`~ldam_sklearn.compare.report`) turn the report into the terminal
   table, the JSON file and the PNG plot.

Every neural method trains the same MLP for the same number of epochs
(:class:`NetSettings`); only the loss, the schedule or the sampler differs.
The data (long-tailed subsample and test split) is fixed; ``seeds`` vary the
models only, so every seed sees the same training class counts.
"""

from .data import (
    DATA_SEED,
    DATASETS,
    IMBLEARN_DATASETS,
    ComparisonData,
    load_csv,
    load_generated,
    load_imblearn,
)
from .methods import METHODS, Method, NetSettings
from .metrics import FEW_SHOT_MAX, MANY_SHOT_MIN, SCORES, score, shot_groups
from .report import format_table, plot_per_class_recall, save_report
from .run import run_comparison

__all__ = [
    "DATASETS",
    "DATA_SEED",
    "FEW_SHOT_MAX",
    "IMBLEARN_DATASETS",
    "MANY_SHOT_MIN",
    "METHODS",
    "SCORES",
    "ComparisonData",
    "Method",
    "NetSettings",
    "format_table",
    "load_csv",
    "load_generated",
    "load_imblearn",
    "plot_per_class_recall",
    "run_comparison",
    "save_report",
    "score",
    "shot_groups",
]
