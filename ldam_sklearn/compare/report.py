"""Outputs of a comparison report: the terminal table, the JSON file and the recall plot."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import FEW_SHOT_MAX, MANY_SHOT_MIN

__all__ = ["format_table", "plot_per_class_recall", "save_report"]

#: Summary key -> column title, in the order of the table.
_COLUMNS = (
    ("balanced_accuracy", "bal. acc"),
    ("macro_f1", "macro-F1"),
    ("g_mean", "G-mean"),
    ("many_shot", "many"),
    ("medium_shot", "medium"),
    ("few_shot", "few"),
    ("fit_seconds", "fit s"),
)
_SHOT_KEYS = ("many_shot", "medium_shot", "few_shot")
#: The column that replaces the shot groups on binary data.
_MINORITY = ("minority_recall", "minority recall")
#: Training balanced accuracy before a DRW / DRS switch from which on
#: re-balancing has nothing left to act on.
_FITTED_BACC = 1.0
_INERT_HEADER = (
    "Deferred re-balancing with nothing to act on: the network classified every training "
    "row correctly before the switch to class-balanced training, so there was almost no "
    "loss left to re-balance and the switch changed the model little (compare the same "
    "loss without it). Regularisation that keeps the loss up lets it act, as the default "
    "recipe's mixup does (with fewer than 12 training rows per feature, or 20 epochs):"
)


def _cell(stat: dict[str, float] | None, key: str, with_std: bool) -> str:
    if stat is None:
        return "-"
    if key == "fit_seconds":
        return f"{stat['mean']:.1f}"
    return f"{stat['mean']:.3f}" + (f" ± {stat['std']:.3f}" if with_std else "")


def _minority_recall(entry: dict[str, Any], minority: int) -> dict[str, float]:
    values = [run["per_class_recall"][minority] for run in entry["runs"]]
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=100, subsequent_indent="    ", break_long_words=False)


def _class_sizes(data: dict[str, Any]) -> str:
    """One "label: train/test" item per class: how much each class's recall can swing."""
    items = [
        # No-break spaces keep an item on one line when the list is wrapped.
        f"{label}:\N{NO-BREAK SPACE}{n_train}/{n_test}"
        for label, n_train, n_test in zip(
            data["classes"], data["class_counts_train"], data["class_counts_test"], strict=True
        )
    ]
    text = _wrap(
        "rows per class (training/test): "
        + ", ".join(items)
        + "; a class with few test rows has a coarse, noisy recall."
    )
    return text.replace("\N{NO-BREAK SPACE}", " ")


def format_table(report: dict[str, Any]) -> str:
    """The terminal table of a report: one row per method, mean (± std over seeds).

    Skipped and failed methods are listed under the table with the reason,
    and so are the warnings the runs raised (e.g. SMOTE's lowered
    ``k_neighbors``, L2RW's smaller meta set), since they change the scores.
    On binary data the many/medium/few-shot columns give way to the recall
    of the minority class.

    Parameters
    ----------
    report : dict
        From :func:`run_comparison` (or read back from its JSON file).

    Returns
    -------
    table : str
        A title line, the aligned table, a legend (G-mean, the shot groups
        or the minority class, the training and test rows of each class)
        and, if any, the methods that did not run and the warnings.

    Notes
    -----
    The columns are balanced accuracy [1]_, macro-F1, G-mean and the recall
    of the many-, medium- and few-shot classes [2]_.

    References
    ----------
    .. [1] K. H. Brodersen, C. S. Ong, K. E. Stephan and J. M. Buhmann, "The
       balanced accuracy and its posterior distribution", ICPR 2010,
       pp. 3121-3124.
    .. [2] B. Kang, S. Xie, M. Rohrbach, Z. Yan, A. Gordo, J. Feng and
       Y. Kalantidis, "Decoupling Representation and Classifier for
       Long-Tailed Recognition", ICLR 2020, arXiv:1910.09217.

    Examples
    --------
    >>> from ldam_sklearn.compare import NetSettings, format_table, load_generated, run_comparison
    >>> data = load_generated("digits", imbalance_ratio=10)
    >>> report = run_comparison(
    ...     data, ["erm", "logreg"], settings=NetSettings(epochs=1, hidden=(16,)), progress=False
    ... )
    >>> table = format_table(report)
    >>> table.splitlines()[2].split()[:3]
    ['method', 'bal.', 'acc']
    >>> [line.split("  ")[0] for line in table.splitlines()[4:6]]
    ['ERM', 'LogReg (balanced)']
    """
    config, data = report["config"], report["data"]
    seeds = config["seeds"]
    several_seeds = len(seeds) > 1
    binary = len(data["classes"]) == 2
    if binary:
        # Two classes make the shot groups one class each (or empty): the
        # rare class's recall says the same more plainly.
        minority = int(np.argmin(data["class_counts_train"]))
        columns = [c for c in _COLUMNS if c[0] not in _SHOT_KEYS]
        columns.insert(3, _MINORITY)
    else:
        columns = list(_COLUMNS)
    n_groups = {group: len(labels) for group, labels in data["shot_groups"].items()}
    header = ["method"] + [
        f"{title} ({n_groups[key]})" if key in n_groups else title for key, title in columns
    ]
    rows, notes, warned, inert = [], [], [], []
    for entry in report["methods"].values():
        if entry["status"] != "ok":
            notes.append(f"  {entry['label']}: {entry['status']} - {entry['note']}")
            continue
        stats = dict(entry["summary"])
        if binary:
            stats["minority_recall"] = _minority_recall(entry, minority)
        rows.append(
            [entry["label"]] + [_cell(stats[key], key, several_seeds) for key, _ in columns]
        )
        texts = dict.fromkeys(text for run in entry["runs"] for text in run.get("warnings", ()))
        warned += [_wrap(f"  {entry['label']}: {text}") for text in texts]
        inert += _inert_deferred_stage(entry)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    title = (
        f"{config['data']['description']}: {config['data']['n_train']} training rows, "
        f"{config['data']['n_test']} test rows, {len(data['classes'])} classes; "
        + (f"seeds {seeds[0]}..{seeds[-1]}" if several_seeds else f"seed {seeds[0]}")
    )
    legend = [
        "G-mean: geometric mean of the per-class recalls, so 0 whenever one class has zero recall.",
    ]
    if binary:
        legend.append(
            f"minority recall: test recall of the rarer training class, "
            f"{data['classes'][minority]!r}."
        )
    else:
        legend.append(
            f"many/medium/few: mean recall of the classes with > {MANY_SHOT_MIN}, "
            f"{FEW_SHOT_MAX}-{MANY_SHOT_MIN}, < {FEW_SHOT_MAX} training samples "
            "(number of classes)."
        )
    legend.append(_class_sizes(data))
    parts = [title, "", line(header), line(["-" * w for w in widths])]
    parts += [line(row) for row in rows] + ["", *legend]
    if notes:
        parts += ["Not in the table:", *notes]
    if warned:
        parts += ["Warnings (they may change the scores above):", *warned]
    if inert:
        parts += [_wrap(_INERT_HEADER), *inert]
    return "\n".join(parts)


def _inert_deferred_stage(entry: dict[str, Any]) -> list[str]:
    """A line under the note when the DRW / DRS switch found every training row classified right."""
    stages = [run.get("deferred_stage") for run in entry["runs"]]
    fitted = [s for s in stages if s is not None and (s["train_bacc"] or 0.0) >= _FITTED_BACC]
    if not fitted:
        return []
    first = fitted[0]
    return [
        f"  {entry['label']}: {len(fitted)} of {len(stages)} runs, switch at epoch "
        f"{first['epoch']} of {first['epochs']}, training loss "
        f"{max(s['train_loss'] for s in fitted):.2g} or less"
    ]


def save_report(report: dict[str, Any], path: str | Path) -> Path:
    """Write the report as indented JSON (strict: no NaN), creating the folder.

    Parameters
    ----------
    report : dict
        From :func:`run_comparison`.
    path : str or path
        Where to write the JSON file.

    Returns
    -------
    path : pathlib.Path
        The file written.

    Notes
    -----
    Strict JSON [1]_ has no ``NaN`` or ``Infinity``; :func:`json.dumps` with
    ``allow_nan=False`` [2]_ raises ``ValueError`` rather than write them, so
    every JSON reader can load the report.

    References
    ----------
    .. [1] T. Bray (ed.), "The JavaScript Object Notation (JSON) Data
       Interchange Format", RFC 8259, IETF, 2017,
       https://www.rfc-editor.org/rfc/rfc8259.
    .. [2] Python documentation, "json: JSON encoder and decoder",
       https://docs.python.org/3/library/json.html.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from ldam_sklearn.compare import NetSettings, load_generated, run_comparison, save_report
    >>> data = load_generated("digits", imbalance_ratio=10)
    >>> report = run_comparison(
    ...     data, ["erm", "logreg"], settings=NetSettings(epochs=1, hidden=(16,)), progress=False
    ... )
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_report(report, Path(tmp) / "run" / "results.json")
    ...     loaded = json.loads(path.read_text(encoding="utf-8"))
    >>> path.name, sorted(loaded) == sorted(report)
    ('results.json', True)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


#: One colour and one marker per method, in the order of the report: 16
#: colours (Matplotlib's tab10 and six more that differ from its hues) and
#: 16 markers, so that every method of :data:`METHODS` has its own of each.
_COLORS = (
    *("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"),
    *("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"),
    *("#000000", "#ff00ff", "#800000", "#000080", "#b8860b", "#2f4f4f"),
)
_MARKERS = "osD^vP<>XphH*d8x"
#: Methods whose per-class recall is drawn: the best few, plus ERM as reference.
_TOP = 4
_REFERENCE = "ERM"


def _style(i: int) -> dict[str, Any]:
    return {"color": _COLORS[i % len(_COLORS)], "marker": _MARKERS[i % len(_MARKERS)]}


def _figure(report: dict[str, Any]):
    """The comparison figure: methods ranked by balanced accuracy, top methods' recall per class."""
    # The object-oriented API with the Agg canvas: no display needed, and the
    # caller's pyplot backend and figures are left alone. Imported here, as
    # matplotlib is slow to import and only the plot needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = report["data"]
    styles = {name: _style(i) for i, name in enumerate(report["methods"])}
    ran = {name: e for name, e in report["methods"].items() if e["status"] == "ok"}
    ranked = sorted(ran, key=lambda name: ran[name]["summary"]["balanced_accuracy"]["mean"])
    fig = Figure(figsize=(14, 0.32 * max(len(ranked), 8) + 2.6), layout="constrained")
    FigureCanvasAgg(fig)
    rank_ax, recall_ax = fig.subplots(1, 2, width_ratios=(1, 1.5))
    fig.suptitle(report["config"]["data"]["description"], fontsize=11)

    # Left: every method on its own row, best at the top; small hollow marks
    # are the seeds, the large mark their mean.
    for row, name in enumerate(ranked):
        scores = [run["balanced_accuracy"] for run in ran[name]["runs"]]
        style = styles[name]
        rank_ax.plot([min(scores), max(scores)], [row, row], color=style["color"], lw=1.5)
        rank_ax.scatter(scores, [row] * len(scores), s=18, facecolors="none", **style)
        rank_ax.scatter(np.mean(scores), row, s=70, zorder=3, **style)
        rank_ax.annotate(
            f"{np.mean(scores):.3f}", (np.mean(scores), row), xytext=(0, 7),
            textcoords="offset points", ha="center", fontsize=7,
        )  # fmt: skip
    rank_ax.axvline(1 / len(data["classes"]), color="0.5", ls=":", lw=1)
    rank_ax.set_yticks(range(len(ranked)), [ran[name]["label"] for name in ranked])
    rank_ax.set_ylim(-0.7, len(ranked) - 0.3)
    rank_ax.set_xlabel(
        "test balanced accuracy (dotted: chance)"
        + (f"; seeds {report['config']['seeds'][0]}..{report['config']['seeds'][-1]}: "
           "hollow marks, mean: filled" if len(report["config"]["seeds"]) > 1 else "")
    )  # fmt: skip
    rank_ax.grid(axis="x", alpha=0.3)
    rank_ax.set_title("Which method? Balanced accuracy, best first", fontsize=10)

    # Right: recall of each class, head classes on the left, for the best
    # methods and the ERM reference; each method shifted a little sideways
    # so that equal recalls do not hide one another.
    shown = ranked[::-1][:_TOP]
    shown += [name for name in ran if ran[name]["label"] == _REFERENCE and name not in shown]
    counts = np.asarray(data["class_counts_train"])
    order = np.argsort(-counts, kind="stable")
    x = np.arange(len(order))
    bars = recall_ax.twinx()
    bars.bar(x, counts[order], color="0.88", width=0.8, zorder=0)
    bars.set_yscale("log")
    bars.set_ylim(0.5, counts.max() * 1.3)  # a class of one row keeps a visible bar
    bars.set_ylabel("training rows of the class (grey bars, log scale)", color="0.4")
    recall_ax.set_zorder(bars.get_zorder() + 1)
    recall_ax.patch.set_visible(False)
    offsets = np.linspace(-0.25, 0.25, len(shown)) if len(shown) > 1 else np.zeros(len(shown))
    for offset, name in zip(offsets, shown, strict=True):
        recall = np.asarray(ran[name]["summary"]["per_class_recall"])[order]
        label = ran[name]["label"] + (" (reference)" if name not in ranked[::-1][:_TOP] else "")
        recall_ax.plot(x + offset, recall, lw=1, ms=6, label=label, **styles[name])
    names = [str(data["classes"][i]) for i in order]
    ticks = [f"{name}\n{counts[i]}" for name, i in zip(names, order, strict=True)]
    recall_ax.set_xticks(x, ticks, fontsize=8 if len(x) <= 20 else 6)
    if len(x) > 12 or max(map(len, names)) > 6:
        recall_ax.tick_params(axis="x", labelrotation=90)
    recall_ax.set_xlim(-0.6, len(x) - 0.4)
    recall_ax.set_ylim(-0.03, 1.03)
    recall_ax.set_xlabel("class and its training rows, most frequent first")
    recall_ax.set_ylabel("test recall of the class")
    recall_ax.grid(axis="y", alpha=0.3)
    # Head classes (left) are usually recalled well: the lower left is free.
    if shown:  # when every method failed or was skipped the panels stay empty
        recall_ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    recall_ax.set_title(
        f"What does it buy on rare classes? Recall per class, top {min(_TOP, len(ranked))}",
        fontsize=10,
    )
    return fig


def plot_per_class_recall(report: dict[str, Any], path: str | Path) -> Path:
    """Draw the comparison: the methods ranked, and the best ones' recall per class.

    The left panel ranks every method that ran by test balanced accuracy
    (the mean over seeds, each seed shown, chance level dotted); the right
    panel shows the per-class test recall of the best four and of ERM, the
    reference, with the classes ordered from the most to the least frequent
    in training, named on the axis with their training counts (grey bars).
    Each method keeps one colour and one marker in both panels.

    Parameters
    ----------
    report : dict
        From :func:`run_comparison` (or read back from its JSON file).
    path : str or path
        Where to write the PNG; its folder is created.

    Returns
    -------
    path : pathlib.Path
        The file written.

    Notes
    -----
    Recall against training class frequency is how long-tail papers show
    where a method gains, e.g. Kang et al. [1]_ and Cao et al. [2]_. Drawn
    with Matplotlib [3]_.

    References
    ----------
    .. [1] B. Kang, S. Xie, M. Rohrbach, Z. Yan, A. Gordo, J. Feng and
       Y. Kalantidis, "Decoupling Representation and Classifier for
       Long-Tailed Recognition", ICLR 2020, arXiv:1910.09217.
    .. [2] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.
    .. [3] J. D. Hunter, "Matplotlib: A 2D Graphics Environment", Computing in
       Science & Engineering 9(3), pp. 90-95, 2007.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from ldam_sklearn.compare import NetSettings, load_generated, run_comparison
    >>> from ldam_sklearn.compare import plot_per_class_recall
    >>> data = load_generated("digits", imbalance_ratio=10)
    >>> report = run_comparison(
    ...     data, ["erm", "logreg"], settings=NetSettings(epochs=1, hidden=(16,)), progress=False
    ... )
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = plot_per_class_recall(report, Path(tmp) / "per_class_recall.png")
    ...     path.read_bytes()[1:4]
    b'PNG'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _figure(report).savefig(path, dpi=110)
    return path
