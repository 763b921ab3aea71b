"""Outputs of a comparison report: the terminal table, the JSON file and the recall plot."""

from __future__ import annotations

import json
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


def _cell(stat: dict[str, float] | None, key: str, with_std: bool) -> str:
    if stat is None:
        return "-"
    if key == "fit_seconds":
        return f"{stat['mean']:.1f}"
    return f"{stat['mean']:.3f}" + (f" ± {stat['std']:.3f}" if with_std else "")


def format_table(report: dict[str, Any]) -> str:
    """The terminal table of a report: one row per method, mean (± std over seeds).

    Skipped and failed methods are listed under the table with the reason.

    Parameters
    ----------
    report : dict
        From :func:`run_comparison` (or read back from its JSON file).

    Returns
    -------
    table : str
        A title line, the aligned table, the legend of the shot groups and,
        if any, the methods that did not run.

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
    n_groups = {group: len(labels) for group, labels in data["shot_groups"].items()}
    header = ["method"] + [
        f"{title} ({n_groups[key]})" if key in n_groups else title for key, title in _COLUMNS
    ]
    rows, notes = [], []
    for entry in report["methods"].values():
        if entry["status"] != "ok":
            notes.append(f"  {entry['label']}: {entry['status']} - {entry['note']}")
            continue
        rows.append(
            [entry["label"]]
            + [_cell(entry["summary"][key], key, several_seeds) for key, _ in _COLUMNS]
        )
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
    legend = (
        f"many/medium/few: mean recall of the classes with > {MANY_SHOT_MIN}, "
        f"{FEW_SHOT_MAX}-{MANY_SHOT_MIN}, < {FEW_SHOT_MAX} training samples (number of classes)"
    )
    parts = [title, "", line(header), line(["-" * w for w in widths])]
    parts += [line(row) for row in rows] + ["", legend]
    if notes:
        parts += ["Not in the table:", *notes]
    return "\n".join(parts)


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


def plot_per_class_recall(report: dict[str, Any], path: str | Path) -> Path:
    """Plot each method's per-class test recall against the training class count.

    One line per method that ran, classes sorted by training count on a log
    x axis, so the tail is on the left.

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
    # The object-oriented API with the Agg canvas: no display needed, and the
    # caller's pyplot backend and figures are left alone. Imported here, as
    # matplotlib is slow to import and only the plot needs it.
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(report["data"]["class_counts_train"])
    order = np.argsort(counts, kind="stable")
    fig = Figure(figsize=(9.5, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = matplotlib.colormaps["tab10"].colors
    ran = [entry for entry in report["methods"].values() if entry["status"] == "ok"]
    for i, entry in enumerate(ran):
        recall = np.asarray(entry["summary"]["per_class_recall"])[order]
        # Ten colours, then the same colours dashed: 13 methods stay apart.
        ax.plot(
            counts[order],
            recall,
            marker="os^vD<>phX*P"[i % 12],
            color=colors[i % len(colors)],
            linestyle="-" if i < len(colors) else "--",
            linewidth=2.5 if entry["label"] == "LDAM-DRW" else 1.2,
            label=entry["label"],
        )
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training samples of the class (log scale)")
    ax.set_ylabel("test recall of the class")
    ax.set_title(f"Per-class recall: {report['config']['data']['description']}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
