"""The ``ldam-sklearn`` command line (also ``python -m ldam_sklearn``).

Only argument parsing and printing live here; what ``compare`` runs is in
:mod:`ldam_sklearn.compare`. Bad input (an unknown method, a missing file or
column, a one-class target) ends the command like any argparse error: a
message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from . import compare
from ._version import __version__

__all__ = ["build_parser", "main"]

_DEFAULT_OUT = "ldam_sklearn_results"
_REPORT_NAME = "results.json"
_PLOT_NAME = "per_class_recall.png"

_DESCRIPTION = """\
Compare LDAM-DRW, learning-to-reweight and the usual imbalance remedies on one
data set: a table of balanced accuracy, macro-F1, G-mean, many/medium/few-shot
recall (the minority class's recall on binary data) and fit time; a JSON file
with every number and the exact configuration; and a PNG that ranks the
methods by balanced accuracy and shows the best ones' recall of each class
against its training frequency. Progress goes to stderr: a bar per fit on a
terminal (epochs, time left, training balanced accuracy), lines otherwise.

Without arguments: long-tailed MNIST-1D (imbalance ratio 100, generated
locally, no download), all methods, about a minute on two CPU cores.
"""

_IMBLEARN_NAMES = textwrap.fill(
    ", ".join(compare.IMBLEARN_DATASETS), width=78, initial_indent="  ", subsequent_indent="  "
)

_EPILOG = f"""\
methods (default: all, in this order):
{chr(10).join(f"  {name:<16}{method.label}" for name, method in compare.METHODS.items())}

datasets (long-tailed training set, balanced test set):
{chr(10).join(f"  {name:<16}{text}" for name, text in compare.DATASETS.items())}

imbalanced-learn data sets (--imblearn NAME):
{_IMBLEARN_NAMES}

where the data is read from:
  --csv PATH      that file.
  --imblearn      DATA_HOME/zenodo/x<ID>data.npz, never downloaded. DATA_HOME is
                  --data-home DIR, else $SCIKIT_LEARN_DATA, else ~/scikit_learn_data.
                  Fetch a set once where there is network access (imblearn's
                  fetch_datasets(filter_data=("ecoli",))), or copy its zenodo/
                  folder and point --data-home at the folder that holds it.
  --dataset       digits and synthetic come with scikit-learn; mnist1d is
                  generated once and cached in --data-home DIR, else
                  $LDAM_SKLEARN_DATA, else ~/.cache/ldam_sklearn.

Every neural method trains the same MLP (--hidden) for the same --epochs;
the samplers (ros, smote) run inside an imbalanced-learn pipeline before an
ERM network; ensemble is CrossFitEnsembleClassifier() at its defaults (five
40-epoch LDAM-DRW networks, whatever --epochs says). All methods share the
preprocessing of the run: StandardScaler for numeric data, median imputation
+ scaling and one-hot encoding for CSV tables, TF-IDF (sparse) for
--text-column, where hgb is skipped. The data
split is fixed (seed {compare.DATA_SEED}); --seeds N varies the models only
(random_state 0..N-1) and the table shows mean ± std.

examples:
  ldam-sklearn compare
  ldam-sklearn compare --dataset digits --imbalance-ratio 50 --profile step
  ldam-sklearn compare --csv data.csv --target label --methods erm,ldam_drw,logreg
  ldam-sklearn compare --csv reviews.csv --target rating --text-column review
  ldam-sklearn compare --imblearn ecoli --seeds 3 --out results/ecoli
"""


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text}")
    return value


def _ratio(text: str) -> float:
    value = float(text)
    if not value >= 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(size) for size in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"give comma-separated positive layer widths, e.g. 256,256; got {text!r}"
        )
    return sizes


def _methods(text: str) -> list[str]:
    names = [name.strip().lower().replace("-", "_") for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return list(compare.METHODS)
    unknown = [name for name in names if name not in compare.METHODS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown method(s) {', '.join(unknown) or repr(text)}; "
            f"valid methods: {', '.join(compare.METHODS)} (or all)"
        )
    return list(dict.fromkeys(names))  # drop repeats, keep the order given


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ldam-sklearn``.

    Its one subcommand, ``compare``, runs :func:`ldam_sklearn.compare.run_comparison`
    on LDAM-DRW [1]_, learning to reweight [2]_ and the usual remedies; the
    parser is a standard :mod:`argparse` one [3]_.

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser; the parsed ``compare`` arguments carry the function that
        runs them as ``run``.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.
    .. [2] M. Ren, W. Zeng, B. Yang and R. Urtasun, "Learning to Reweight
       Examples for Robust Deep Learning", ICML 2018, arXiv:1803.09050.
    .. [3] Python documentation, "argparse: Parser for command-line options,
       arguments and subcommands", https://docs.python.org/3/library/argparse.html.

    Examples
    --------
    >>> from ldam_sklearn.cli import build_parser
    >>> args = build_parser().parse_args(
    ...     ["compare", "--dataset", "digits", "--methods", "erm,ldam-drw", "--epochs", "2"]
    ... )
    >>> args.command, args.dataset, args.methods, args.epochs
    ('compare', 'digits', ['erm', 'ldam_drw'], 2)
    """
    parser = argparse.ArgumentParser(
        prog="ldam-sklearn",
        description="Imbalance-aware deep classifiers for scikit-learn.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    cmp = commands.add_parser(
        "compare",
        help="compare imbalance methods on one data set",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    data = cmp.add_argument_group("data (one source; default --dataset mnist1d)")
    source = data.add_mutually_exclusive_group()
    source.add_argument(
        "--dataset",
        choices=list(compare.DATASETS),
        default="mnist1d",
        help="generated long-tailed data with a balanced test set (default mnist1d)",
    )
    source.add_argument("--csv", metavar="PATH", type=Path, help="a CSV file (needs --target)")
    source.add_argument(
        "--imblearn",
        metavar="NAME",
        help="an imbalanced-learn benchmark, read from --data-home (names and folders below)",
    )
    data.add_argument(
        "--imbalance-ratio",
        type=_ratio,
        metavar="RHO",
        help="largest / smallest training class, --dataset only (default 100)",
    )
    data.add_argument(
        "--profile", choices=("exp", "step"), help="class-count decay, --dataset only (default exp)"
    )
    data.add_argument("--target", metavar="COL", help="column of class labels, --csv only")
    data.add_argument(
        "--text-column", metavar="COL", help="text column for TF-IDF features, --csv only"
    )
    data.add_argument(
        "--test-size",
        type=_fraction,
        metavar="FRAC",
        help="stratified test fraction (default 0.25; mnist1d keeps its own test split)",
    )
    data.add_argument(
        "--data-home",
        metavar="DIR",
        type=Path,
        help="folder of the cached data: imbalanced-learn's zenodo/ folder, MNIST-1D's "
        "cache (defaults below)",
    )

    defaults = compare.NetSettings()
    run = cmp.add_argument_group("methods and budget")
    run.add_argument(
        "--methods",
        type=_methods,
        default=list(compare.METHODS),
        metavar="LIST",
        help="comma-separated method names (default all; see below)",
    )
    run.add_argument(
        "--seeds",
        type=_positive(int),
        default=1,
        metavar="N",
        help="model seeds 0..N-1 (default 1)",
    )
    run.add_argument(
        "--epochs",
        type=_positive(int),
        default=defaults.epochs,
        help=f"epochs of every network (default {defaults.epochs})",
    )
    run.add_argument(
        "--hidden",
        type=_hidden,
        default=defaults.hidden,
        metavar="SIZES",
        help=f"hidden layer widths (default {','.join(map(str, defaults.hidden))})",
    )
    run.add_argument(
        "--batch-size",
        type=_positive(int),
        default=defaults.batch_size,
        metavar="N",
        help=f"(default {defaults.batch_size})",
    )
    run.add_argument(
        "--lr",
        type=_positive(float),
        default=defaults.lr,
        help=f"base learning rate of SGD (default {defaults.lr})",
    )
    run.add_argument(
        "--threads",
        type=_positive(int),
        default=1,
        metavar="N",
        help="CPU threads of torch and gradient boosting (default 1: small networks gain "
        "nothing from more, and lose much when other processes share the cores)",
    )
    run.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=defaults.device,
        help="where networks train (default auto: CUDA when available)",
    )

    output = cmp.add_argument_group("output")
    output.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=Path(_DEFAULT_OUT),
        help=f"folder for {_REPORT_NAME} and {_PLOT_NAME} (default ./{_DEFAULT_OUT})",
    )
    output.add_argument("--quiet", action="store_true", help="no progress output")
    cmp.set_defaults(run=_compare, command_parser=cmp)
    return parser


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject options that do not apply to the chosen data source."""
    if args.csv is None:
        for option, value in (("--target", args.target), ("--text-column", args.text_column)):
            if value is not None:
                parser.error(f"{option} applies to --csv only")
    elif args.target is None:
        parser.error("--csv needs --target COL, the column of class labels")
    if args.csv is not None or args.imblearn is not None:
        for option, value in (
            ("--imbalance-ratio", args.imbalance_ratio),
            ("--profile", args.profile),
        ):
            if value is not None:
                parser.error(
                    f"{option} applies to --dataset only (CSV and imblearn data stay as they are)"
                )
    generated = args.csv is None and args.imblearn is None
    if args.test_size is not None and generated and args.dataset == "mnist1d":
        parser.error("--test-size does not apply to mnist1d, which keeps its own test split")


def _load_data(args: argparse.Namespace) -> compare.ComparisonData:
    test_size = 0.25 if args.test_size is None else args.test_size
    if args.csv is not None:
        return compare.load_csv(
            args.csv, args.target, text_column=args.text_column, test_size=test_size
        )
    if args.imblearn is not None:
        return compare.load_imblearn(args.imblearn, test_size=test_size, data_home=args.data_home)
    return compare.load_generated(
        args.dataset,
        100.0 if args.imbalance_ratio is None else args.imbalance_ratio,
        args.profile or "exp",
        test_size=test_size,
        data_home=args.data_home,
    )


def _compare(args: argparse.Namespace, argv: list[str]) -> int:
    parser = args.command_parser  # errors name the subcommand: "ldam-sklearn compare: error: ..."
    _check_options(parser, args)
    try:
        data = _load_data(args)
    except (OSError, ValueError) as exc:  # bad path, column, target or data set name
        parser.error(str(exc))
    try:  # before the run, not after it
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"--out {args.out}: cannot create the folder ({exc.strerror})")
    settings = compare.NetSettings(
        epochs=args.epochs,
        hidden=args.hidden,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
    )
    report = compare.run_comparison(
        data,
        args.methods,
        settings=settings,
        seeds=args.seeds,
        n_threads=args.threads,
        progress=not args.quiet,
    )
    report["config"]["command"] = ["ldam-sklearn", *argv]
    json_path = compare.save_report(report, args.out / _REPORT_NAME)
    plot_path = compare.plot_per_class_recall(report, args.out / _PLOT_NAME)
    print(compare.format_table(report))
    print(f"\nwrote {json_path} and {plot_path}")
    failed = any(entry["status"] == "failed" for entry in report["methods"].values())
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ldam-sklearn``; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 1 if a method failed (the others still ran and were
        reported). Bad arguments raise ``SystemExit(2)`` with the message on
        stderr, as argparse does.

    See Also
    --------
    build_parser : The options ``main`` accepts.
    ldam_sklearn.compare.run_comparison : What ``compare`` runs.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.
    .. [2] M. Ren, W. Zeng, B. Yang and R. Urtasun, "Learning to Reweight
       Examples for Robust Deep Learning", ICML 2018, arXiv:1803.09050.

    Examples
    --------
    A quick comparison of ERM and LDAM-DRW [1]_ on long-tailed digits, with
    one epoch of a small network; the table goes to stdout (captured here):

    >>> import contextlib, io, tempfile
    >>> from pathlib import Path
    >>> from ldam_sklearn.cli import main
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()) as out:
    ...     status = main(
    ...         ["compare", "--dataset", "digits", "--methods", "erm,ldam_drw",
    ...          "--epochs", "1", "--hidden", "16", "--out", tmp, "--quiet"]
    ...     )
    ...     written = sorted(path.name for path in Path(tmp).iterdir())
    >>> status, written
    (0, ['per_class_recall.png', 'results.json'])
    >>> "LDAM-DRW" in out.getvalue()
    True
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.run(args, argv)
