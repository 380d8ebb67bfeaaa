"""globals.csv → per-cycle NEQ works → BAR free energy → report.

Modules: :mod:`~fahflow.analysis.globals` (parser and WU classification),
:mod:`~fahflow.analysis.outliers`, :mod:`~fahflow.analysis.estimate` (BAR, EXP, bootstrap),
:mod:`~fahflow.analysis.report` (:func:`analyze_paths`, :func:`write_report`),
:mod:`~fahflow.analysis.plots` and :mod:`~fahflow.analysis.index_page`. Nothing here imports
OpenMM; pymbar and matplotlib are imported only where they are used.
"""
