"""Run the whole benchmark suite: one table of ratios next to their targets, and JSON.

``python benchmarks/run.py`` measures, side by side in one run (interleaved
rounds, medians, ratios, so that a noisy machine hits every contender alike):

1. training throughput on dense X of shape (50000, 50) and (200000, 100):
   the estimator against a hand-written PyTorch loop and plain skorch
   (``bench_fit``);
2. sparse TF-IDF input: peak memory against the dense matrix's size, and time
   per epoch against n_features and nnz (``bench_sparse``, which measures
   memory with ``bench_text_memory``'s corpus and meter in a fresh process);
3. the cost of an L2RW epoch over an ERM epoch, the naive double-backward
   route included (``bench_meta_weights``);
4. ``predict_proba`` throughput on 1,000,000 rows against the module's own
   forward pass (``bench_predict``);
5. fit time against rows and classes, plotted to ``scaling.png``
   (``bench_scaling``);
6. on a CUDA machine, the training rows again on the GPU, in float32 and in
   bf16 autocast; on a CPU-only machine these rows are skipped with a note.

It prints the table, and writes ``results.json`` (every measurement and the
machine description), ``results.md`` (the table in Markdown) and
``scaling.png`` to ``--out`` (default ``results/benchmarks/``, ignored by
git). The whole CPU suite takes about 5 minutes on 2 cores. ``--quick``
runs every section on tiny sizes in well under a minute (the smoke test
uses it); its numbers mean nothing.

The suite benchmarks this checkout's ``ldam_sklearn`` (the repository root is
put first on ``sys.path``). On a machine whose cores are busy with other
work, OpenMP's default spin-waiting can make two PyTorch threads 50x slower:
the suite warns when the load average exceeds the core count, and
``--omp-passive`` (``OMP_WAIT_POLICY=PASSIVE``) or ``--threads 1`` keep such
runs usable, at the price of numbers that are not those of an idle machine.
"""

from __future__ import annotations

import os
import sys

# Both must happen before torch is imported (by the bench modules below). On
# an idle machine OpenMP's default spin-waiting is fastest (passive waiting
# made an epoch 2.7x slower here); on cores that other processes keep busy,
# spinning threads ran an epoch 50x slower, so ``--omp-passive`` opts in to
# passive waiting. An importer that loaded torch already keeps its setting.
if "--omp-passive" in sys.argv[1:] and "torch" not in sys.modules:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _path in (HERE, ROOT):
    if _path not in sys.path[:2]:
        sys.path.insert(0, _path)

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import bench_fit  # noqa: E402
import bench_meta_weights  # noqa: E402
import bench_predict  # noqa: E402
import bench_scaling  # noqa: E402
import bench_sparse  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import skorch  # noqa: E402
import torch  # noqa: E402

import ldam_sklearn  # noqa: E402
from ldam_sklearn.base import resolve_device  # noqa: E402

FULL = {
    "fit_shapes": ((50_000, 50, 15), (200_000, 100, 11)),  # rows, features, rounds
    "fit_epochs": 2,
    "sparse": {},
    "l2rw_epochs": {"rounds": 5},
    "l2rw_steps": {"repeats": 9, "steps": 10},
    "predict": {},
    "scaling": {},
    "cuda_shape": (200_000, 100, 3),
}
QUICK = {
    "fit_shapes": ((1_000, 50, 1), (1_000, 100, 1)),
    "fit_epochs": 1,
    "sparse": {"quick": True},
    "l2rw_epochs": {"n_samples": 1_000, "rounds": 1},
    "l2rw_steps": {"repeats": 1, "steps": 2},
    "predict": {"n_rows": 5_000, "rounds": 1},
    "scaling": {"rows": (200, 400, 800), "classes": (2, 5, 10), "class_rows": 400, "rounds": 1},
    "cuda_shape": (2_000, 50, 1),
}


class Table:
    """Rows of (section, measurement, value, target) with a pass/miss status."""

    def __init__(self):
        self.rows = []

    def add(self, section, name, value, fmt="{:.2f}x", target=None, note=""):
        """Add a row; ``target`` is ``("<=", 1.15)``, ``(">=", 2)``, ``("<", 0.25)`` or None."""
        if target is None:
            status, target_text = "info", "—"
        else:
            op, bound = target
            ok = {"<=": value <= bound, ">=": value >= bound, "<": value < bound}[op]
            status, target_text = ("ok" if ok else "MISSED"), f"{op} {bound:g}"
        self.rows.append(
            {
                "section": section,
                "measurement": name,
                "value": value,
                "shown": fmt.format(value),
                "target": target_text,
                "status": status,
                "note": note,
            }
        )

    def skip(self, section, name, note):
        self.rows.append(
            {
                "section": section,
                "measurement": name,
                "value": None,
                "shown": "—",
                "target": "—",
                "status": "skipped",
                "note": note,
            }
        )

    def text(self):
        widths = [10, 72, 12, 9, 8]
        head = ("section", "measurement", "value", "target", "status")
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        for row in self.rows:
            cells = [row[k] for k in ("section", "measurement", "shown", "target", "status")]
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)))
            if row["note"] and row["status"] in ("skipped", "MISSED"):
                lines.append(" " * (widths[0] + 2) + "note: " + row["note"])
        return "\n".join(lines)

    def markdown(self):
        lines = ["| section | measurement | value | target | status |", "|---|---|---|---|---|"]
        for row in self.rows:
            name = row["measurement"] + (f" ({row['note']})" if row["note"] else "")
            status = f"**{row['status']}**" if row["status"] == "MISSED" else row["status"]
            lines.append(
                f"| {row['section']} | {name} | {row['shown']} | {row['target']} | {status} |"
            )
        return "\n".join(lines)


def machine(device):
    """What the numbers were measured on."""
    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "ldam_sklearn": f"{ldam_sklearn.__version__} ({os.path.dirname(ldam_sklearn.__file__)})",
        "device": str(device),
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# -- sections ------------------------------------------------------------------


def section_fit(table, cfg, device, precision="fp32", section="1 fit"):
    results = {}
    shapes = cfg["cuda_shape"] if section.startswith("6") else None
    for n, f, rounds in [shapes] if shapes else cfg["fit_shapes"]:
        result = bench_fit.run(
            n_samples=n,
            n_features=f,
            epochs=cfg["fit_epochs"],
            rounds=rounds,
            losses=bench_fit.LOSSES,
            device=device,
            precision=precision,
        )
        results[f"{n}x{f}"] = result
        for loss, block in result["by_loss"].items():
            label = "LDAM-DRW (default)" if loss == "ldam" else 'loss="ce", schedule="none"'
            where = f"({n}, {f}) {label}"
            if precision != "fp32":
                where += f" {precision}"
            ratios = block["ratio_to_hand_written"]
            table.add(
                section,
                f"{where}: ours / hand-written loop",
                ratios["ldam_sklearn"],
                target=("<=", 1.15),
            )
            table.add(
                section,
                f"{where}: plain skorch / ours",
                block["skorch_over_ours"],
                target=(">=", 2.0),
            )
            table.add(
                section,
                f"{where}: plain skorch / hand-written loop",
                block["skorch_over_hand_written"],
                note="the most any data path with the loop's arithmetic gains over plain skorch",
            )
            table.add(
                section,
                f"{where}: ours, s/epoch",
                block["seconds_per_epoch"]["ldam_sklearn"],
                fmt="{:.3f} s",
            )
            table.add(
                section,
                f"{where}: ours, fit set-up before the first epoch",
                block["setup_seconds"]["ldam_sklearn"],
                fmt="{:.3f} s",
                note="once per fit: validation, input statistics, initialisation",
            )
            faults = block["page_faults_per_epoch"]
            table.add(
                section,
                f"{where}: ours, minor page faults per epoch",
                faults["ldam_sklearn"],
                fmt="{:,.0f}",
                note=f"hand-written loop: {faults['hand_written']:,.0f}; load-independent",
            )
    return results


def section_sparse(table, cfg):
    result = bench_sparse.run(**cfg["sparse"])
    mem = result["memory"]["shipped"]
    shape = "x".join(f"{d:,}" for d in mem["shape"])
    table.add(
        "2 sparse",
        f"TF-IDF {shape}, nnz {mem['nnz']:,}: dense float32 size",
        mem["dense_float32_MB"],
        fmt="{:,.0f} MB",
    )
    table.add(
        "2 sparse",
        "as shipped: process peak RSS / dense size",
        mem["process_peak_over_dense"],
        fmt="{:.3f}",
        target=("<", 0.25),
        note=f"{mem['process_max_rss_MB']:,.0f} MB, torch and the corpus included",
    )
    table.add(
        "2 sparse",
        "as shipped: largest RSS growth during fit / dense size",
        mem["max_fit_growth_over_dense"],
        fmt="{:.4f}",
    )
    table.add(
        "2 sparse",
        "as shipped: TF-IDF fit seconds / epoch (validation included)",
        mem["seconds_per_epoch_incl_validation"],
        fmt="{:.2f} s",
    )
    block = result["scaling"]["shipped"]
    for row in block["rows"]:
        table.add(
            "2 sparse",
            f"as shipped: s/epoch, {row['n_features']:,} features, {row['nnz_per_row']} nnz/row",
            row["seconds_per_epoch"],
            fmt="{:.2f} s",
        )
    table.add(
        "2 sparse",
        "as shipped: time ratio 100x features, equal nnz",
        block["features_100x_ratio"],
        target=("<=", 1.5),
        note="SparseLinear first layer, lazy SGD: each step touches the batch's features only",
    )
    table.add("2 sparse", "as shipped: time ratio 2x nnz, equal features", block["nnz_2x_ratio"])
    return result


def section_l2rw(table, cfg, device):
    epochs = bench_meta_weights.run_epochs(**cfg["l2rw_epochs"], device=device)
    for method, ratio in epochs["ratio_to_erm"].items():
        if method == "erm":
            continue
        label = {
            "layerwise": 'L2RW epoch / ERM epoch, weight_method="auto" (layerwise)',
            "jvp": 'L2RW epoch / ERM epoch, weight_method="jvp"',
            "lookahead": "L2RW epoch / ERM epoch, naive double backward (lookahead)",
            "mwnet": 'MW-Net epoch / ERM epoch, weight_method="auto" (layerwise)',
            "mwnet updated": 'MW-Net epoch / ERM epoch, real_step_weights="updated"',
        }[method]
        target = ("<=", 2.5) if method in ("layerwise", "mwnet") else None
        table.add("3 l2rw", label, ratio, target=target)
    seconds = epochs["seconds_per_epoch"]
    table.add(
        "3 l2rw",
        "naive (lookahead) / auto (layerwise) epoch",
        seconds["lookahead"] / seconds["layerwise"],
    )
    steps = bench_meta_weights.run(**cfg["l2rw_steps"])
    for method, ratio in steps["ratio_to_erm"].items():
        if method != "erm":
            table.add("3 l2rw", f"single step / ERM step, {method}", ratio)
    return {"epochs": epochs, "steps": steps}


def section_predict(table, cfg, device):
    result = bench_predict.run(**cfg["predict"], device=device)
    n = f"{result['n_rows']:,}"
    for bs, block in result["by_batch_size"].items():
        table.add(
            "4 predict",
            f"predict_proba, {n} rows, batch {bs}: rows/s",
            block["predict_proba_rows_per_s"],
            fmt="{:,.0f}",
        )
        table.add(
            "4 predict",
            f"module forward loop, batch {bs}: rows/s",
            block["forward_rows_per_s"],
            fmt="{:,.0f}",
        )
        table.add(
            "4 predict",
            f"predict_proba time / forward loop time, batch {bs}",
            block["predict_proba_over_forward"],
        )
    return result


def section_scaling(table, cfg, out_dir, device):
    result = bench_scaling.run(**cfg["scaling"], device=device)
    png = bench_scaling.plot(result, os.path.join(out_dir, "scaling.png"))
    rows = result["rows"]
    for n, us in zip(rows["n_rows"], rows["microseconds_per_row"], strict=True):
        table.add(
            "5 scaling", f"fit (1 epoch), {n:,} rows: microseconds per row", us, fmt="{:.1f} us"
        )
    table.add(
        "5 scaling",
        f"cost per row, {rows['n_rows'][-1]:,} rows / {rows['n_rows'][-2]:,} rows",
        rows["per_row_ratio_largest"],
        target=("<=", 1.15),
    )
    classes = result["classes"]
    for c, s in zip(classes["n_classes"], classes["seconds"], strict=True):
        table.add(
            "5 scaling",
            f"fit (1 epoch), {classes['n_rows']:,} rows, {c:,} classes",
            s,
            fmt="{:.2f} s",
        )
    table.add(
        "5 scaling",
        "fit time vs classes: R² of a straight line",
        classes["r2"],
        fmt="{:.3f}",
        target=(">=", 0.95),
    )
    result["png"] = png
    return result


def section_cuda(table, cfg, device):
    if device.type != "cuda":
        note = "no CUDA device: GPU and bf16-autocast rows are skipped on CPU-only machines"
        table.skip("6 cuda", "fit on CUDA, float32: ours / hand-written loop", note)
        table.skip("6 cuda", "fit on CUDA, bf16 autocast: ours / hand-written loop", note)
        return {"skipped": note}
    return {
        precision: section_fit(table, cfg, device, precision=precision, section="6 cuda")
        for precision in ("fp32", "bf16")
    }


SECTIONS = ("fit", "sparse", "l2rw", "predict", "scaling", "cuda")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--out",
        default=os.path.join(ROOT, "results", "benchmarks"),
        help="folder for results.json, results.md and scaling.png",
    )
    parser.add_argument("--device", default="auto", help='"auto" (CUDA if present), "cpu", ...')
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: PyTorch's, one per core)",
    )
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE, for machines whose cores are busy with other work",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="run only these sections",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cfg = QUICK if args.quick else FULL
    os.makedirs(args.out, exist_ok=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > (os.cpu_count() or 1) and os.environ.get("OMP_WAIT_POLICY") != "PASSIVE":
        print(
            f"warning: load average {load:.1f} on {os.cpu_count()} cores; other processes keep "
            "the cores busy and spinning OpenMP threads may run many times slower. Consider "
            "--omp-passive or --threads 1 (and say so next to the numbers).",
            flush=True,
        )

    table = Table()
    report = {"machine": machine(device), "quick": args.quick, "results": {}, "seconds": {}}
    start = time.perf_counter()
    runners = {
        "fit": lambda: section_fit(table, cfg, device),
        "sparse": lambda: section_sparse(table, cfg),
        "l2rw": lambda: section_l2rw(table, cfg, device),
        "predict": lambda: section_predict(table, cfg, device),
        "scaling": lambda: section_scaling(table, cfg, args.out, device),
        "cuda": lambda: section_cuda(table, cfg, device),
    }
    for name in SECTIONS:
        if name not in args.only:
            continue
        t0 = time.perf_counter()
        print(f"[{time.perf_counter() - start:6.0f} s] {name} ...", flush=True)
        report["results"][name] = runners[name]()
        report["seconds"][name] = time.perf_counter() - t0
    report["seconds"]["total"] = time.perf_counter() - start
    if hasattr(os, "getloadavg"):
        report["machine"]["load_average_end"] = list(os.getloadavg())
    report["table"] = table.rows

    m = report["machine"]
    header = (
        f"{m['cpu']}, {m['cpu_count']} cores, {m['torch_threads']} torch threads, "
        f"torch {m['torch']}, skorch {m['skorch']}, scikit-learn {m['scikit-learn']}, "
        f"device {m['device']}, {m['date']}"
    )
    if args.quick:
        header += "\nQUICK MODE: tiny sizes, the numbers mean nothing"
    total = report["seconds"]["total"]
    footer = f"total {total / 60:.1f} min (target < 15 min for the CPU suite on 2 cores)"
    print()
    print(header)
    print(table.text())
    print(footer)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(report, f, indent=2, default=str)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(f"{header}\n\n{table.markdown()}\n\n{footer}\n")
    print(f"wrote {os.path.join(args.out, 'results.json')}, results.md and scaling.png")
    return report


if __name__ == "__main__":
    main()
