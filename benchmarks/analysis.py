"""Benchmark of the analysis: parse + BAR + 1000-sample whole-CLONE bootstrap for 10,000 WUs.

Writes synthetic globals.csv files in the real core's layout (30 columns, a row every 25,000 steps,
Crooks-distributed works) under ``PROJ*/RUN*/CLONE*/results0/``, then times each phase and the
whole of :func:`fahflow.analysis.report.analyze_paths`. Target: the whole under 30 s on 2 cores.

    python benchmarks/analysis.py [--wus 10000] [--cycles 1] [--bootstrap 1000] [--keep DIR]

The files are read from the page cache (they were just written): this measures the parser, not
the disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from fahflow.analysis.estimate import bar_estimate, bootstrap_bar
from fahflow.analysis.globals import find_globals, parse_globals
from fahflow.analysis.outliers import DEFAULT_THRESHOLD, mark_outliers
from fahflow.analysis.report import analyze_paths, write_report
from fahflow.analysis.synthetic import crooks_gaussian_works, globals_csv_text

T = TypeVar("T")
CLONES_PER_RUN = 1000


def timed(label: str, function: Callable[[], T]) -> T:
    """Run ``function``, print its wall and CPU time (CPU shows the cost on a busy machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<48} {wall:7.2f} s wall {cpu:7.2f} s CPU", flush=True)
    return value


def write_tree(root: Path, n_wus: int, cycles: int, seed: int) -> None:
    w_F, w_R = crooks_gaussian_works(n_wus * cycles, 1.5, 1.5, np.random.default_rng(seed))
    for wu in range(n_wus):
        run, clone = divmod(wu, CLONES_PER_RUN)
        directory = root / "PROJ17000" / f"RUN{run}" / f"CLONE{clone}" / "results0"
        directory.mkdir(parents=True)
        cycle_slice = slice(wu * cycles, (wu + 1) * cycles)
        pairs = list(zip(w_F[cycle_slice], w_R[cycle_slice], strict=True))
        (directory / "globals.csv").write_text(globals_csv_text(pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wus", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=1, help="cycles per WU")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="fahflow-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        print(f"{args.wus} WUs x {args.cycles} cycle(s), {args.bootstrap} bootstrap samples, "
              f"{os.cpu_count()} CPUs; files under {root}")  # fmt: skip
        if not any(root.iterdir()):
            timed(
                "write synthetic files (not counted)",
                lambda: write_tree(root, args.wus, args.cycles, 0),
            )
        print("-- phases")
        found = timed("find globals.csv", lambda: find_globals([root]))
        wus = timed("parse", lambda: [parse_globals(p, key=k) for p, k in found])
        timed("outliers", lambda: mark_outliers(wus, DEFAULT_THRESHOLD))
        pairs = [(c.w_F, c.w_R, wu.key.group) for wu in wus for c in wu.ok_cycles()]
        w_F = np.array([p[0] for p in pairs])
        w_R = np.array([p[1] for p in pairs])
        groups = [p[2] for p in pairs]
        point = timed(
            "BAR (pymbar) + EXP + diagnostics",
            lambda: bar_estimate(w_F, w_R, temperature_K=298.0, groups=groups, n_bootstrap=0),
        )
        timed(
            f"bootstrap x{args.bootstrap} (whole CLONEs, vectorized BAR)",
            lambda: bootstrap_bar(w_F, w_R, groups, args.bootstrap, 0, x0=point.Delta_f_kT),
        )
        print("-- end to end")
        result = timed(
            "analyze_paths (parse + BAR + bootstrap)",
            lambda: analyze_paths([root], n_bootstrap=args.bootstrap, seed=0),
        )
        report_dir = Path(tempfile.mkdtemp(prefix="fahflow-bench-report-"))
        timed("write_report (JSON, CSV, 3 PNG, HTML)", lambda: write_report(result, report_dir))
        shutil.rmtree(report_dir)
        e = result.estimate
        print(f"ΔG = {e.Delta_f_kT:.3f} ± {e.sigma_kT:.3f} kT (truth 1.5) from {result.n_pairs} "
              f"pairs, {e.n_groups} CLONEs")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
