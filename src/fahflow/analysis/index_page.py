"""The report's ``index.html``: one self-contained page, no script, no network.

Images are referenced by relative path (they sit beside the page), styles are inline, and every
value taken from the data is escaped.
"""

from __future__ import annotations

from html import escape

from fahflow.analysis.numbers import sigma_text, value_sigma_text
from fahflow.analysis.report import AnalysisResult

MAX_LISTED_FAILURES = 200
"""Failed WUs (and, apart, WUs with notes) listed on the page; all are in result.json."""

_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 60em; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
.warn { color: #a40; }
img { max-width: 100%; }
"""


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)


def render_index(result: AnalysisResult, images: dict[str, str]) -> str:
    """HTML of the report page; ``images`` maps a title to a PNG file name beside the page."""
    e = result.estimate
    kJ, dkJ = e.to_kJ_per_mol()
    kcal, dkcal = e.to_kcal_per_mol()
    ci = (
        f"[{e.ci_low_kT:.3f}, {e.ci_high_kT:.3f}] kT"
        if e.ci_low_kT is not None and e.ci_high_kT is not None
        else "n/a"
    )
    summary = [
        (
            "ΔG (BAR; σ the larger of bootstrap and analytical)",
            f"{value_sigma_text(e.Delta_f_kT, e.sigma_kT)} kT",
        ),
        ("ΔG", f"{value_sigma_text(kJ, dkJ)} kJ/mol"),
        ("ΔG", f"{value_sigma_text(kcal, dkcal)} kcal/mol"),
        ("analytical σ", f"{sigma_text(e.dDelta_f_kT)} kT"),
        (
            "bootstrap σ",
            "n/a"
            if e.dDelta_f_bootstrap_kT is None
            else f"{sigma_text(e.dDelta_f_bootstrap_kT)} kT",
        ),
        (f"bootstrap {e.confidence:.0%} interval ({e.n_bootstrap} resamples)", ci),
        (
            "EXP forward",
            f"{value_sigma_text(e.exp_forward.Delta_f_kT, e.exp_forward.dDelta_f_kT)} kT",
        ),
        (
            "EXP reverse",
            f"{value_sigma_text(e.exp_reverse.Delta_f_kT, e.exp_reverse.dDelta_f_kT)} kT",
        ),
        ("pairs / CLONEs", f"{result.n_pairs} / {e.n_groups}"),
        ("temperature (from the files' kT)", f"{result.temperature_K:.2f} K"),
        ("overlap", f"{e.diagnostics.overlap:.3f}"),
        (
            "dissipation forward / reverse",
            f"{e.diagnostics.dissipation_forward_kT:.2f} / "
            f"{e.diagnostics.dissipation_reverse_kT:.2f} kT",
        ),
    ]
    if e.additional_cycles_for_target is not None:
        summary.append(
            (
                f"more cycles for σ = {result.settings.target_sigma_kcal_per_mol} kcal/mol",
                str(e.additional_cycles_for_target),
            )
        )
    statuses = sorted(result.status_counts.items())
    failures = [wu for wu in result.work_units if wu.status.value != "ok"]
    failure_rows = "\n".join(
        f"<tr><td>{escape(wu.key.source)}</td><td>{escape(wu.status.value)}</td>"
        f"<td>{escape(wu.reason)}</td></tr>"
        for wu in failures[:MAX_LISTED_FAILURES]
    )
    more = len(failures) - MAX_LISTED_FAILURES
    noted = [wu for wu in result.work_units if wu.notes]
    note_rows = "\n".join(
        f"<tr><td>{escape(wu.key.source)}</td><td>{escape(wu.status.value)}</td>"
        f"<td>{'<br>'.join(escape(n) for n in wu.notes)}</td></tr>"
        for wu in noted[:MAX_LISTED_FAILURES]
    )
    more_noted = len(noted) - MAX_LISTED_FAILURES
    figures = "\n".join(
        f'<h2>{escape(title)}</h2>\n<img src="{escape(name)}" alt="{escape(title)}">'
        for title, name in images.items()
    )
    warnings = "\n".join(f'<li class="warn">{escape(w)}</li>' for w in result.warnings)
    settings = _rows([(k, str(v)) for k, v in result.settings.model_dump().items()])
    versions = _rows(sorted(result.versions.items()))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>fahflow analysis</title><style>{_STYLE}</style></head>
<body>
<h1>Free energy</h1>
<p>{escape(", ".join(result.inputs))} — {escape(result.created_utc)}, schema
{result.schema_version}. Full data: <a href="result.json">result.json</a>,
<a href="works.csv">works.csv</a>.</p>
<table>{_rows(summary)}</table>
<ul>{warnings}</ul>
{figures}
<h2>Work units</h2>
<table><tr><th>status</th><th>WUs</th></tr>
{_rows([(s, str(n)) for s, n in statuses])}</table>
<table><tr><th>WU</th><th>status</th><th>reason</th></tr>
{failure_rows}</table>
{f"<p>… and {more} more in result.json.</p>" if more > 0 else ""}
<h2>Notes (rows repaired or passed over)</h2>
<table><tr><th>WU</th><th>status</th><th>notes</th></tr>
{note_rows}</table>
{f"<p>… and {more_noted} more in result.json.</p>" if more_noted > 0 else ""}
<h2>Settings</h2><table>{settings}</table>
<h2>Versions</h2><table>{versions}</table>
</body></html>
"""
