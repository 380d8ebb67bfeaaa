"""Parse one FAH OpenMM core ``globals.csv`` into per-cycle nonequilibrium works.

The core writes one row every ``globalVarFreq`` steps: ``Step,Time``, the context parameters, then
every global variable of the integrator (openmmtools' ``PeriodicNonequilibriumIntegrator``), among
them ``kT``, ``lambda``, ``n_steps_eq``, ``n_steps_neq``, ``n_steps_per_cycle`` and
``protocol_work``. A cycle is ``eq (λ=0) | neq 0→1 | eq (λ=1) | neq 1→0``; ``protocol_work``
(kJ/mol) is reset when a cycle starts and accumulates during both switching legs, so for cycle
``c`` with ``b = c * n_steps_per_cycle``::

    W_f = (pw[b + eq + neq]       - pw[b + eq])           / kT
    W_r = (pw[b + 2 eq + 2 neq]   - pw[b + 2 eq + neq])   / kT

in units of kT, with the ``kT`` the file itself records (the real-core fixture has kT for 298 K
while its barostat says 300 K). The schedule comes from the file's own columns, never from
configuration: configuration is only compared against it.

What the real core writes, and what this parser does about it:

* pause/resume repeats the header and re-writes rows from the last checkpoint: every header line is
  honoured and, for a step written twice, the **last** row wins (it belongs to the trajectory that
  went on to finish the WU);
* ``\\r\\n`` line endings and NUL padding after a crash are tolerated;
* a truncated last line (fewer fields than the header) is dropped and noted;
* rows whose steps go backwards without a new header are put back in step order and noted, naming
  the lines;
* ``protocol_work`` NaN or infinite at any row of a switching leg, not only at its ends, makes
  that leg's work unusable (``nan``, naming the step and line): the value at the end of the leg is
  a sum over the whole leg, and a NaN inside it says the trajectory blew up even where a later
  row reads as a number again. A NaN outside the legs (in an equilibration phase) is noted;
* a work whose magnitude exceeds ``max_abs_work_kT`` is ``implausible``: no real switching leg
  does that much work (see :data:`DEFAULT_MAX_ABS_WORK_KT`);
* a needed row that is missing makes the cycle ``truncated`` when the file stops before it and
  ``schedule_mismatch`` when later rows exist (``globalVarFreq`` does not divide the leg lengths).

Nothing is silently dropped: each cycle and each WU carries a :class:`WorkUnitStatus` and a reason.
The file is parsed with plain string splitting rather than :func:`pandas.read_csv`, which costs
about 1 ms per file, most of the 30 s budget for 10,000 WUs (see ``benchmarks/analysis.py``).
"""

from __future__ import annotations

import enum
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from fahflow.analysis.units import temperature_K_from_kT
from fahflow.errors import ConfigError
from fahflow.ws.layout import RESULT_FILE

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("Step", "kT", "n_steps_eq", "n_steps_neq", "n_steps_per_cycle", "protocol_work")
"""Columns without which no work can be computed."""

LAMBDA_TOLERANCE = 1e-3
"""How far ``lambda`` may be from 0 or 1 at the ends of a switching leg."""

KT_RELATIVE_TOLERANCE = 1e-4
"""Relative kT difference (0.03 K at 300 K) below which two temperatures are the same."""

DEFAULT_MAX_ABS_WORK_KT = 1.0e4
"""Largest |W_f| or |W_r| (kT) believed by default; a work beyond it is ``implausible``.

A work is ΔG plus the dissipated work. The dissipation of a real NEQ switch of a protein-ligand
system is a few hundred kT, a few thousand at the very most for very short legs; the ΔG part of
a hybrid-topology leg (valence and intramolecular terms of the dummy atoms) reaches a few hundred
kT (the real-core fixture reads 153.8 kT). 10⁴ kT stays a factor of a few above both, and is
still far below what a blown-up trajectory leaves (10⁵ kT and more). The robust outlier score
cannot replace it: with few pairs it does not run and with near-identical pairs it cannot scale.
"""

MAX_LISTED_ROWS = 5
"""Rows named in one note or reason; more are counted."""


class WorkUnitStatus(enum.StrEnum):
    """Classification of one cycle or one WU. Only ``ok`` pairs enter the estimate.

    ``unreadable`` covers what is not a globals.csv at all (unreadable file, no header, a required
    column missing); the others are the classes named by the issue.
    """

    OK = "ok"
    TRUNCATED = "truncated"
    SCHEDULE_MISMATCH = "schedule_mismatch"
    NAN = "nan"
    IMPLAUSIBLE = "implausible"
    OUTLIER = "outlier"
    UNREADABLE = "unreadable"


# A WU takes the status of its worst cycle, in this order.
_SEVERITY = {
    WorkUnitStatus.UNREADABLE: 0,
    WorkUnitStatus.NAN: 1,
    WorkUnitStatus.IMPLAUSIBLE: 2,
    WorkUnitStatus.SCHEDULE_MISMATCH: 3,
    WorkUnitStatus.TRUNCATED: 4,
    WorkUnitStatus.OUTLIER: 5,
    WorkUnitStatus.OK: 6,
}


class WorkUnitKey(BaseModel):
    """Where a globals.csv came from: PROJECT/RUN/CLONE/GEN, or its relative path.

    A file under ``.../PROJ{p}/RUN{r}/CLONE{c}/results{g}/`` (the work server's layout, mirrored
    by the workflow when it collects results) gets its PRCG from the path. Any other file has
    ``None`` ids and is known by ``source``, its path relative to the directory it was found in
    (or its name when given directly); each such file is its own bootstrap group.
    """

    model_config = ConfigDict(frozen=True)

    project: int | None = None
    run: int | None = None
    clone: int | None = None
    gen: int | None = None
    source: str

    @classmethod
    def from_path(cls, path: Path, root: Path | None = None) -> WorkUnitKey:
        """Key of ``path``; ``root`` is the directory it was found under, for the fallback label."""
        posix = path.as_posix()
        match = RESULT_FILE.search(posix)
        if match:
            p, r, c, g = (int(x) for x in match.groups())
            return cls(project=p, run=r, clone=c, gen=g, source=f"P{p}/R{r}/C{c}/G{g}")
        if root is not None:
            try:
                return cls(source=path.relative_to(root).as_posix())
            except ValueError:
                pass
        return cls(source=posix)

    @property
    def group(self) -> str:
        """The unit the bootstrap resamples: the CLONE (all its GENs and cycles) or the file."""
        if self.project is None:
            return self.source
        return f"P{self.project}/R{self.run}/C{self.clone}"

    @property
    def sort_key(self) -> tuple[int, int, int, int, str]:
        """Order of generation where known (PRCG), then by label."""
        ids = (self.project, self.run, self.clone, self.gen)
        return (*(-1 if i is None else i for i in ids), self.source)  # type: ignore[return-value]


class Schedule(BaseModel):
    """Steps of one NEQ cycle as the integrator records them."""

    model_config = ConfigDict(frozen=True)

    n_steps_eq: int
    n_steps_neq: int
    n_steps_per_cycle: int

    def leg_steps(self, cycle: int) -> tuple[int, int, int, int]:
        """Steps at which the forward leg starts and ends, then the reverse leg, in ``cycle``."""
        base = cycle * self.n_steps_per_cycle
        eq, neq = self.n_steps_eq, self.n_steps_neq
        return (base + eq, base + eq + neq, base + 2 * eq + neq, base + 2 * eq + 2 * neq)


class CycleWorks(BaseModel):
    """One cycle's work pair in kT (``None`` where it could not be computed)."""

    cycle: int
    w_F: float | None = None
    w_R: float | None = None
    status: WorkUnitStatus = WorkUnitStatus.OK
    reason: str = ""


class WorkUnitWorks(BaseModel):
    """Everything one globals.csv says: per-cycle works, status, schedule, kT and notes.

    ``status`` is the worst status among the cycles (or the file's own when no cycle could be
    read); ``reason`` explains it. ``notes`` lists what was repaired on the way (duplicate rows,
    a truncated last line) without changing the status.
    """

    key: WorkUnitKey
    path: str
    status: WorkUnitStatus
    reason: str = ""
    cycles: list[CycleWorks] = []
    kT_kJ_per_mol: float | None = None
    schedule: Schedule | None = None
    notes: list[str] = []

    @property
    def temperature_K(self) -> float | None:
        """Temperature of the file's ``kT``."""
        if self.kT_kJ_per_mol is None or not math.isfinite(self.kT_kJ_per_mol):
            return None
        return temperature_K_from_kT(self.kT_kJ_per_mol)

    def ok_cycles(self) -> list[CycleWorks]:
        """Cycles whose pair enters the estimate."""
        return [c for c in self.cycles if c.status is WorkUnitStatus.OK]

    def refresh_status(self) -> None:
        """Recompute ``status``/``reason`` from the cycles (after outliers were marked)."""
        if not self.cycles:
            return
        worst = min(self.cycles, key=lambda c: _SEVERITY[c.status])
        self.status = worst.status
        self.reason = (
            "" if worst.status is WorkUnitStatus.OK else f"cycle {worst.cycle}: {worst.reason}"
        )


class _Rows:
    """Rows of one file, deduplicated by step.

    ``values[step] = (kT, n_steps_eq, n_steps_neq, n_steps_per_cycle, protocol_work, lambda)``.
    """

    def __init__(self) -> None:
        self.values: dict[int, tuple[float, ...]] = {}
        self.has_lambda = True
        self.notes: list[str] = []
        # step -> line of the kept row whose protocol_work is NaN or infinite
        self.nan_work_lines: dict[int, int] = {}


def _unreadable(key: WorkUnitKey, path: Path, reason: str) -> WorkUnitWorks:
    return WorkUnitWorks(key=key, path=str(path), status=WorkUnitStatus.UNREADABLE, reason=reason)


def _read_rows(text: str) -> _Rows | str:
    """Split ``text`` into rows keyed by step; a string is the reason the file is unreadable."""
    rows = _Rows()
    lines = text.replace("\x00", "").splitlines()
    ends_with_newline = text.rstrip("\x00").endswith(("\n", "\r"))
    header_width = 0
    indices: tuple[int, ...] = ()
    lambda_index: int | None = None
    duplicates = malformed = unparsable = 0
    last_number = max((n for n, line in enumerate(lines, start=1) if line.strip()), default=0)
    last_kept = False
    previous_step: int | None = None  # of the last row since the last header
    backwards: list[tuple[int, int, int]] = []  # (line, step, step of the row before it)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        first = fields[0].strip().strip('"')
        if first == "Step":
            names = [f.strip().strip('"') for f in fields]
            missing = [c for c in REQUIRED_COLUMNS if c not in names]
            if missing:
                return f"header on line {number} lacks column(s) {', '.join(missing)}"
            header_width = len(names)
            indices = tuple(names.index(c) for c in REQUIRED_COLUMNS[1:])
            lambda_index = names.index("lambda") if "lambda" in names else None
            rows.has_lambda = rows.has_lambda and lambda_index is not None
            previous_step = None  # a resume re-writes from its checkpoint: going back is expected
            continue
        if not header_width:
            return f"line {number} comes before any 'Step,...' header line"
        if len(fields) != header_width:
            if number == last_number and len(fields) < header_width:
                rows.notes.append(
                    f"truncated last line {number} dropped ({len(fields)} of {header_width} fields)"
                )
            else:
                malformed += 1
            continue
        try:
            step = int(float(first))
        except ValueError:
            malformed += 1
            continue
        values: list[float] = []
        for i in (*indices, lambda_index):
            try:
                values.append(float(fields[i]) if i is not None else math.nan)
            except ValueError:  # "nan" parses: only garbage lands here
                values.append(math.nan)
                unparsable += 1
        if step in rows.values:
            duplicates += 1
        if previous_step is not None and step < previous_step:
            backwards.append((number, step, previous_step))
        previous_step = step
        rows.values[step] = tuple(values)
        if math.isfinite(values[4]):
            rows.nan_work_lines.pop(step, None)
        else:
            rows.nan_work_lines[step] = number
        last_kept = number == last_number
    if not header_width:
        return "no 'Step,...' header line"
    if duplicates:
        rows.notes.append(f"{duplicates} duplicate step row(s) (pause/resume): the last kept")
    if malformed:
        rows.notes.append(f"{malformed} malformed line(s) dropped")
    if unparsable:
        rows.notes.append(f"{unparsable} unparsable number(s) read as NaN")
    if backwards:
        rows.notes.append(_backwards_note(backwards))
    if not ends_with_newline and last_kept:
        rows.notes.append("no newline after the last row (kept: all its fields are present)")
    return rows


def _backwards_note(backwards: list[tuple[int, int, int]]) -> str:
    """Note naming the rows whose step is below the row before them (no header in between).

    Keying rows by step puts them back in order, which is sound: a step's values do not depend
    on where the line sits in the file, and a step written twice is handled (and noted) as a
    duplicate either way.
    """
    shown = ", ".join(
        f"line {line} (step {step} after {before})"
        for line, step, before in backwards[:MAX_LISTED_ROWS]
    )
    more = len(backwards) - MAX_LISTED_ROWS
    return (
        f"{len(backwards)} row(s) out of step order without a new header, put back in step "
        f"order: {shown}{f' and {more} more' if more > 0 else ''}"
    )


def _schedule(
    rows: _Rows, expected: Schedule | None
) -> tuple[Schedule | None, WorkUnitStatus, str]:
    """The file's schedule and whether it is consistent (with itself and ``expected``)."""
    triples = {(v[1], v[2], v[3]) for v in rows.values.values()}
    finite = {t for t in triples if all(math.isfinite(x) for x in t)}
    if not finite:
        return None, WorkUnitStatus.NAN, "schedule columns hold no finite value"
    if len(finite) > 1:
        return (
            None,
            WorkUnitStatus.SCHEDULE_MISMATCH,
            f"schedule changes within the file: {sorted(finite)}",
        )
    eq, neq, per_cycle = (int(x) for x in next(iter(finite)))
    schedule = Schedule(n_steps_eq=eq, n_steps_neq=neq, n_steps_per_cycle=per_cycle)
    if eq < 0 or neq <= 0 or per_cycle != 2 * (eq + neq):
        return (
            schedule,
            WorkUnitStatus.SCHEDULE_MISMATCH,
            f"n_steps_per_cycle={per_cycle} is not 2*(n_steps_eq={eq} + n_steps_neq={neq})",
        )
    if expected is not None and schedule != expected:
        return (
            schedule,
            WorkUnitStatus.SCHEDULE_MISMATCH,
            f"file schedule eq={eq}, neq={neq} differs from the expected "
            f"eq={expected.n_steps_eq}, neq={expected.n_steps_neq}",
        )
    return schedule, WorkUnitStatus.OK, ""


def _cycle(
    rows: _Rows,
    schedule: Schedule,
    cycle: int,
    kT: float,
    last_step: int,
    max_abs_work_kT: float | None,
) -> CycleWorks:
    """Work pair of one cycle, or the reason it has none."""
    steps = schedule.leg_steps(cycle)
    for step in steps:
        if step not in rows.values:
            if step > last_step:
                return CycleWorks(
                    cycle=cycle,
                    status=WorkUnitStatus.TRUNCATED,
                    reason=f"file ends at step {last_step}, before step {step}",
                )
            return CycleWorks(
                cycle=cycle,
                status=WorkUnitStatus.SCHEDULE_MISMATCH,
                reason=f"no row at step {step} (rows exist beyond it)",
            )
    f0, f1, r0, r1 = (rows.values[s] for s in steps)
    if rows.has_lambda:
        for step, row, want in zip(steps, (f0, f1, r0, r1), (0.0, 1.0, 1.0, 0.0), strict=True):
            lam = row[5]
            if math.isfinite(lam) and abs(lam - want) > LAMBDA_TOLERANCE:
                return CycleWorks(
                    cycle=cycle,
                    status=WorkUnitStatus.SCHEDULE_MISMATCH,
                    reason=f"lambda={lam:g} at step {step}, expected {want:g}",
                )
    w_F, nan_F = _leg_work(rows, "forward", steps[0], steps[1], f1[4] - f0[4], kT)
    w_R, nan_R = _leg_work(rows, "reverse", steps[2], steps[3], r1[4] - r0[4], kT)
    if w_F is None or w_R is None:
        return CycleWorks(
            cycle=cycle,
            w_F=w_F,
            w_R=w_R,
            status=WorkUnitStatus.NAN,
            reason="; ".join(p for p in (nan_F, nan_R) if p),
        )
    unbelievable = _unbelievable(w_F, w_R, max_abs_work_kT)
    if unbelievable:
        return CycleWorks(
            cycle=cycle, w_F=w_F, w_R=w_R, status=WorkUnitStatus.IMPLAUSIBLE, reason=unbelievable
        )
    return CycleWorks(cycle=cycle, w_F=w_F, w_R=w_R)


def _leg_work(
    rows: _Rows, leg: str, start: int, end: int, delta_kJ_per_mol: float, kT: float
) -> tuple[float | None, str]:
    """``(work in kT, "")``, or ``(None, why)``: NaN/infinite protocol_work at a row of the leg.

    protocol_work accumulates over the leg, so its value at the end is only as good as every
    row before it; a NaN inside the leg is a blown-up trajectory even if the end reads a number.
    """
    bad = sorted((s, line) for s, line in rows.nan_work_lines.items() if start <= s <= end)
    work = delta_kJ_per_mol / kT
    if not bad and math.isfinite(work):
        return work, ""
    where = ", ".join(f"step {s} (line {line})" for s, line in bad[:MAX_LISTED_ROWS])
    more = len(bad) - MAX_LISTED_ROWS
    where += f" and {more} more" if more > 0 else ""
    return None, (
        f"protocol_work is NaN or infinite in the {leg} leg (steps {start}..{end})"
        + (f" at {where}" if where else "")
    )


def _unbelievable(w_F: float, w_R: float, max_abs_work_kT: float | None) -> str:
    """Why a pair is not believable (a work beyond ``max_abs_work_kT`` in size), or ``""``."""
    if max_abs_work_kT is None:
        return ""
    too_big = [
        f"|{name}| = {abs(w):.4g} kT"
        for name, w in (("w_F", w_F), ("w_R", w_R))
        if abs(w) > max_abs_work_kT
    ]
    if not too_big:
        return ""
    return (
        f"{' and '.join(too_big)} beyond the plausible bound {max_abs_work_kT:g} kT "
        "(max_abs_work_kT): a blown-up or corrupted trajectory, not a real switching work"
    )


def parse_globals(
    path: str | os.PathLike[str],
    *,
    key: WorkUnitKey | None = None,
    cycles_per_wu: int | None = None,
    expected_schedule: Schedule | None = None,
    temperature_K: float | None = None,
    max_abs_work_kT: float | None = DEFAULT_MAX_ABS_WORK_KT,
) -> WorkUnitWorks:
    """Read one globals.csv into per-cycle (W_f, W_r) in kT, classified; never raises on content.

    Parameters
    ----------
    path : path-like
        The globals.csv.
    key : WorkUnitKey, optional
        Its PRCG; default: from the path (:meth:`WorkUnitKey.from_path`).
    cycles_per_wu : int, optional
        Cycles the WU was asked to run. Without it the count is read from the last step, so a
        file cut exactly at a cycle boundary cannot be told from a complete one.
    expected_schedule : Schedule, optional
        The schedule the WU was built with; a file that says otherwise is ``schedule_mismatch``.
    temperature_K : float, optional
        The configured temperature (K); a file whose kT disagrees is logged as a warning and
        noted. The file's kT is used regardless.
    max_abs_work_kT : float or None, default :data:`DEFAULT_MAX_ABS_WORK_KT`
        A cycle with ``|W_f|`` or ``|W_r|`` above this (kT) is ``implausible``; None: no bound.

    Returns
    -------
    WorkUnitWorks
        ``cycles[i].w_F``, ``w_R`` in kT; ``status`` ``ok`` or the first problem found.

    Examples
    --------
    >>> wu = parse_globals("tests/data/globals-real-core.csv")
    >>> wu.status.value, round(wu.cycles[0].w_F, 3), round(wu.cycles[0].w_R, 3)
    ('ok', 153.776, -147.416)
    """
    path = Path(path)
    key = key or WorkUnitKey.from_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _unreadable(key, path, f"cannot read {path}: {exc.strerror or exc}")
    rows = _read_rows(data.decode("utf-8", errors="replace"))
    if isinstance(rows, str):
        if not data.strip(b"\x00 \r\n\t"):
            return WorkUnitWorks(
                key=key, path=str(path), status=WorkUnitStatus.TRUNCATED, reason="empty file"
            )
        return _unreadable(key, path, f"{path}: {rows}")
    wu = WorkUnitWorks(key=key, path=str(path), status=WorkUnitStatus.OK, notes=rows.notes)
    if not rows.values:
        wu.status, wu.reason = WorkUnitStatus.TRUNCATED, "header only, no data rows"
        return wu
    schedule, status, reason = _schedule(rows, expected_schedule)
    wu.schedule = schedule
    kTs = {v[0] for v in rows.values.values()}
    kT = rows.values[min(rows.values)][0]  # the first row's: the file's own temperature
    wu.kT_kJ_per_mol = kT if math.isfinite(kT) else None
    if status is not WorkUnitStatus.OK or schedule is None:
        wu.status, wu.reason = status, reason
        return wu
    if not all(math.isfinite(x) and x > 0 for x in kTs):
        wu.status, wu.reason = WorkUnitStatus.NAN, f"kT is not a positive number: {sorted(kTs)}"
        return wu
    if max(kTs) - min(kTs) > KT_RELATIVE_TOLERANCE * max(kTs):
        wu.status = WorkUnitStatus.SCHEDULE_MISMATCH
        wu.reason = f"kT changes within the file: {min(kTs):g} to {max(kTs):g} kJ/mol"
        return wu
    if temperature_K is not None:
        _warn_temperature(wu, temperature_K)
    last_step = max(rows.values)
    per_cycle = schedule.n_steps_per_cycle
    n_cycles = cycles_per_wu or max(1, -(-last_step // per_cycle))
    if n_cycles > len(rows.values):  # a garbage Step far out; never enumerate its "cycles"
        wu.status = WorkUnitStatus.SCHEDULE_MISMATCH
        wu.reason = (
            f"last step {last_step} implies {n_cycles} cycles, the file has {len(rows.values)} rows"
        )
        return wu
    if cycles_per_wu and last_step > cycles_per_wu * per_cycle:
        wu.notes.append(f"rows beyond the {cycles_per_wu} expected cycle(s) ignored")
    wu.cycles = [_cycle(rows, schedule, c, kT, last_step, max_abs_work_kT) for c in range(n_cycles)]
    if rows.nan_work_lines:
        _note_nan_outside_legs(wu, rows, schedule, n_cycles)
    wu.refresh_status()
    return wu


def _note_nan_outside_legs(wu: WorkUnitWorks, rows: _Rows, schedule: Schedule, n: int) -> None:
    """Note NaN protocol_work rows that no leg uses (equilibration phases, rows beyond the WU).

    They change no work, but a NaN is never passed over in silence.
    """
    legs = [schedule.leg_steps(c) for c in range(n)]
    outside = sorted(
        (step, line)
        for step, line in rows.nan_work_lines.items()
        if not any(f0 <= step <= f1 or r0 <= step <= r1 for f0, f1, r0, r1 in legs)
    )
    if outside:
        shown = ", ".join(f"step {s} (line {line})" for s, line in outside[:MAX_LISTED_ROWS])
        more = len(outside) - MAX_LISTED_ROWS
        wu.notes.append(
            f"protocol_work NaN or infinite outside the switching legs at {shown}"
            f"{f' and {more} more' if more > 0 else ''} (no work uses these rows)"
        )


def _warn_temperature(wu: WorkUnitWorks, temperature_K: float) -> None:
    file_T = wu.temperature_K
    if file_T is not None and abs(file_T - temperature_K) > KT_RELATIVE_TOLERANCE * temperature_K:
        message = (
            f"{wu.path}: kT={wu.kT_kJ_per_mol:.6g} kJ/mol is {file_T:.2f} K, configured "
            f"{temperature_K:g} K; using the file's kT"
        )
        logger.warning("%s", message)
        wu.notes.append(message)


def find_globals(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, WorkUnitKey]]:
    """Every globals.csv under ``paths`` (directories, searched recursively, or files), keyed.

    Raises
    ------
    ConfigError
        A path that does not exist.
    """
    found: dict[Path, tuple[Path, WorkUnitKey]] = {}  # by resolved path: overlapping inputs
    for given in paths:
        root = Path(given)
        if root.is_file():
            found.setdefault(root.resolve(), (root, WorkUnitKey.from_path(root)))
        elif root.is_dir():
            for directory, _dirs, files in os.walk(root):
                if "globals.csv" in files:
                    path = Path(directory, "globals.csv")
                    found.setdefault(path.resolve(), (path, WorkUnitKey.from_path(path, root)))
        else:
            raise ConfigError(f"results path {str(root)!r} does not exist")
    return list(found.values())


def leg_work_samples(
    path: str | os.PathLike[str], schedule: Schedule, cycle: int = 0
) -> tuple[list[float], list[float]]:
    """Cumulative ``protocol_work / kT`` (kT) at every row of ``cycle``'s forward and reverse leg.

    For a consumer that wants the samples along each leg rather than the pair of
    :func:`parse_globals` (gufe's NEC result unit reads such arrays and subtracts their first
    element). Rows are read as :func:`parse_globals` reads them (every header honoured, the last
    row of a step written twice kept), each divided by its own ``kT``; both ends of a leg are
    included, so ``forward[-1] - forward[0]`` is that cycle's ``w_F``. Call it on a file that
    :func:`parse_globals` classified ``ok`` with this ``schedule``: a leg without rows raises.

    Raises
    ------
    ConfigError
        The file cannot be read, or has no row at one end of a leg of ``cycle``.
    """
    path = Path(path)
    try:
        rows = _read_rows(path.read_bytes().decode("utf-8", errors="replace"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if isinstance(rows, str):
        raise ConfigError(f"{path}: {rows}")
    f0, f1, r0, r1 = schedule.leg_steps(cycle)
    legs: list[list[float]] = []
    for start, end in ((f0, f1), (r0, r1)):
        if start not in rows.values or end not in rows.values:
            raise ConfigError(f"{path}: no row at step {start} or {end} (cycle {cycle})")
        legs.append(
            [
                rows.values[s][4] / rows.values[s][0]
                for s in sorted(rows.values)
                if start <= s <= end
            ]
        )
    return legs[0], legs[1]
