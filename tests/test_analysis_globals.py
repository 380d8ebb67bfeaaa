"""globals.csv parser: the real core file's golden works and every corrupted variant classified."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fahflow.analysis.globals import (
    Schedule,
    WorkUnitKey,
    WorkUnitStatus,
    find_globals,
    parse_globals,
)
from fahflow.analysis.synthetic import globals_csv_text
from fahflow.errors import ConfigError

DATA = Path(__file__).parent / "data"
REAL = DATA / "globals-real-core.csv"
GOLDEN_W_F, GOLDEN_W_R = 153.776, -147.416


@pytest.fixture()
def real_lines() -> list[str]:
    return REAL.read_text().splitlines()


def write(tmp_path: Path, text: str, name: str = "globals.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def with_field(lines: list[str], step: int, column: str, value: str) -> str:
    """The file ``lines`` with ``column`` of the row at ``step`` set to ``value``."""
    index = lines[0].split(",").index(column)
    out = []
    for line in lines:
        fields = line.split(",")
        if fields[0] == str(step):
            fields[index] = value
        out.append(",".join(fields))
    return "\n".join(out) + "\n"


def test_real_core_file_gives_golden_works() -> None:
    wu = parse_globals(REAL)
    assert wu.status is WorkUnitStatus.OK, wu.reason
    assert len(wu.cycles) == 1
    assert wu.cycles[0].w_F == pytest.approx(GOLDEN_W_F, abs=1e-3)
    assert wu.cycles[0].w_R == pytest.approx(GOLDEN_W_R, abs=1e-3)
    assert wu.schedule == Schedule(n_steps_eq=250_000, n_steps_neq=250_000, n_steps_per_cycle=10**6)
    assert wu.temperature_K == pytest.approx(298.0, abs=1e-3)  # the file's kT, not the barostat's
    assert wu.notes == []


def test_crlf_line_endings(tmp_path: Path, real_lines: list[str]) -> None:
    wu = parse_globals(write(tmp_path, "\r\n".join(real_lines) + "\r\n"))
    assert wu.status is WorkUnitStatus.OK
    assert wu.cycles[0].w_F == pytest.approx(GOLDEN_W_F, abs=1e-3)


def test_pause_resume_duplicate_header_and_rows_keep_the_resumed_rows(
    tmp_path: Path, real_lines: list[str]
) -> None:
    # The core resumed from the checkpoint at row 15 after writing up to row 20 (the last one cut
    # mid-line): header again, then rows 15.. re-written. The resumed rows must win.
    header, rows = real_lines[0], real_lines[1:]
    crashed = [*rows[:20], rows[20][:17]]
    resumed = [header, *rows[15:]]
    wu = parse_globals(write(tmp_path, "\n".join([header, *crashed, *resumed]) + "\n"))
    assert wu.status is WorkUnitStatus.OK, wu.reason
    assert wu.cycles[0].w_F == pytest.approx(GOLDEN_W_F, abs=1e-3)
    assert wu.cycles[0].w_R == pytest.approx(GOLDEN_W_R, abs=1e-3)
    assert any("duplicate step row" in note for note in wu.notes)
    assert any("malformed" in note for note in wu.notes)


def test_duplicate_row_with_different_values_takes_the_last(tmp_path: Path) -> None:
    first = globals_csv_text([(1.0, -0.5)]).splitlines()
    second = globals_csv_text([(2.0, -0.5)]).splitlines()
    # The first attempt reached the end of the forward leg (row 21), the resumed one re-did it.
    text = "\n".join(first[:22] + second) + "\n"
    wu = parse_globals(write(tmp_path, text))
    assert wu.status is WorkUnitStatus.OK
    assert wu.cycles[0].w_F == pytest.approx(2.0)


def test_truncated_last_line_is_dropped_and_noted(tmp_path: Path, real_lines: list[str]) -> None:
    text = "\n".join(real_lines) + "\n" + real_lines[-1][:25]
    wu = parse_globals(write(tmp_path, text))
    assert wu.status is WorkUnitStatus.OK
    assert any("truncated last line" in note for note in wu.notes)


def test_file_cut_before_the_reverse_leg_ends_is_truncated(
    tmp_path: Path, real_lines: list[str]
) -> None:
    text = "\n".join(real_lines[:38]) + "\n" + real_lines[38][:40]
    wu = parse_globals(write(tmp_path, text))
    assert wu.status is WorkUnitStatus.TRUNCATED
    assert "before step 1000000" in wu.reason
    assert wu.cycles[0].w_F is None


def test_empty_and_header_only_files_are_truncated(tmp_path: Path, real_lines: list[str]) -> None:
    assert parse_globals(write(tmp_path, "", "a.csv")).status is WorkUnitStatus.TRUNCATED
    assert parse_globals(write(tmp_path, "\x00" * 64, "b.csv")).status is WorkUnitStatus.TRUNCATED
    header_only = parse_globals(write(tmp_path, real_lines[0] + "\n", "c.csv"))
    assert header_only.status is WorkUnitStatus.TRUNCATED


def test_nul_padding_after_a_crash_is_ignored(tmp_path: Path, real_lines: list[str]) -> None:
    wu = parse_globals(write(tmp_path, "\n".join(real_lines) + "\n" + "\x00" * 300))
    assert wu.status is WorkUnitStatus.OK


def test_nan_protocol_work_is_classified_nan(tmp_path: Path, real_lines: list[str]) -> None:
    # Step 500000 ends the forward leg.
    wu = parse_globals(write(tmp_path, with_field(real_lines, 500_000, "protocol_work", "nan")))
    assert wu.status is WorkUnitStatus.NAN
    assert wu.cycles[0].w_F is None
    assert wu.cycles[0].w_R == pytest.approx(GOLDEN_W_R, abs=1e-3)


def test_garbage_number_reads_as_nan_and_is_noted(tmp_path: Path, real_lines: list[str]) -> None:
    text = with_field(real_lines, 1_000_000, "protocol_work", "15.7x")
    wu = parse_globals(write(tmp_path, text))
    assert wu.status is WorkUnitStatus.NAN
    assert any("unparsable" in note for note in wu.notes)


def test_inconsistent_schedule_columns_are_schedule_mismatch(
    tmp_path: Path, real_lines: list[str]
) -> None:
    text = with_field(real_lines, 100_000, "n_steps_per_cycle", "900000")
    wu = parse_globals(write(tmp_path, text))
    assert wu.status is WorkUnitStatus.SCHEDULE_MISMATCH
    assert "changes within the file" in wu.reason


def test_rows_not_on_leg_boundaries_are_schedule_mismatch(tmp_path: Path) -> None:
    # globalVarFreq 30,000 does not divide 250,000: no row where the forward leg starts.
    text = globals_csv_text([(1.0, -1.0)], global_var_freq=30_000)
    wu = parse_globals(write(tmp_path, text))
    assert wu.status is WorkUnitStatus.SCHEDULE_MISMATCH
    assert "no row at step 250000" in wu.reason


def test_expected_schedule_differs_is_schedule_mismatch(tmp_path: Path) -> None:
    path = write(tmp_path, globals_csv_text([(1.0, -1.0)]))
    expected = Schedule(n_steps_eq=100_000, n_steps_neq=400_000, n_steps_per_cycle=10**6)
    wu = parse_globals(path, expected_schedule=expected)
    assert wu.status is WorkUnitStatus.SCHEDULE_MISMATCH
    assert "differs from the expected" in wu.reason


def test_lambda_off_the_schedule_is_schedule_mismatch(
    tmp_path: Path, real_lines: list[str]
) -> None:
    # Step 500000 ends the forward leg: lambda must be 1 there.
    wu = parse_globals(write(tmp_path, with_field(real_lines, 500_000, "lambda", "0.9")))
    assert wu.status is WorkUnitStatus.SCHEDULE_MISMATCH
    assert "lambda=0.9 at step 500000" in wu.reason


def test_unreadable_files_name_file_and_column(tmp_path: Path, real_lines: list[str]) -> None:
    no_header = parse_globals(write(tmp_path, "\n".join(real_lines[1:]) + "\n", "a.csv"))
    assert no_header.status is WorkUnitStatus.UNREADABLE
    assert "a.csv" in no_header.reason and "header" in no_header.reason
    renamed = real_lines[0].replace("protocol_work", "work")
    missing = parse_globals(write(tmp_path, "\n".join([renamed, *real_lines[1:]]) + "\n", "b.csv"))
    assert missing.status is WorkUnitStatus.UNREADABLE
    assert "protocol_work" in missing.reason and "b.csv" in missing.reason
    absent = parse_globals(tmp_path / "absent.csv")
    assert absent.status is WorkUnitStatus.UNREADABLE and "absent.csv" in absent.reason


def test_several_cycles_per_wu(tmp_path: Path) -> None:
    works = [(1.5, -0.5), (2.0, -1.0), (3.0, 0.25)]
    wu = parse_globals(
        write(
            tmp_path,
            globals_csv_text(works, n_steps_eq=5000, n_steps_neq=20000, global_var_freq=1000),
        )
    )
    assert wu.status is WorkUnitStatus.OK
    assert [(c.cycle, round(c.w_F, 9), round(c.w_R, 9)) for c in wu.cycles] == [
        (i, w_F, w_R) for i, (w_F, w_R) in enumerate(works)
    ]


def test_cut_in_a_later_cycle_keeps_the_complete_ones(tmp_path: Path) -> None:
    lines = globals_csv_text([(1.0, -1.0), (2.0, -2.0), (3.0, -3.0)]).splitlines()
    wu = parse_globals(write(tmp_path, "\n".join(lines[:100]) + "\n"))  # cycle 2 ends at row 121
    assert wu.status is WorkUnitStatus.TRUNCATED
    assert [c.status for c in wu.cycles] == [WorkUnitStatus.OK] * 2 + [WorkUnitStatus.TRUNCATED]
    assert [c.w_F for c in wu.ok_cycles()] == pytest.approx([1.0, 2.0])


def test_cycles_per_wu_detects_a_file_cut_at_a_cycle_boundary(tmp_path: Path) -> None:
    path = write(tmp_path, globals_csv_text([(1.0, -1.0), (2.0, -2.0)]))
    assert parse_globals(path).status is WorkUnitStatus.OK
    wu = parse_globals(path, cycles_per_wu=3)
    assert wu.status is WorkUnitStatus.TRUNCATED
    assert len(wu.ok_cycles()) == 2


def test_configured_temperature_disagreeing_with_kT_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="fahflow.analysis.globals"):
        wu = parse_globals(REAL, temperature_K=300.0)
    assert wu.status is WorkUnitStatus.OK
    assert "298.00 K, configured 300 K" in caplog.text
    assert wu.cycles[0].w_F == pytest.approx(GOLDEN_W_F, abs=1e-3)  # the file's kT is used
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fahflow.analysis.globals"):
        parse_globals(REAL, temperature_K=298.0)
    assert caplog.text == ""


def test_key_from_ws_layout_and_fallback(tmp_path: Path) -> None:
    wu_dir = tmp_path / "PROJ17101" / "RUN4" / "CLONE123" / "results0"
    wu_dir.mkdir(parents=True)
    (wu_dir / "globals.csv").write_text(REAL.read_text())
    other = tmp_path / "misc" / "globals.csv"
    other.parent.mkdir()
    other.write_text(REAL.read_text())
    keys = {key.source: key for _, key in find_globals([tmp_path])}
    prcg = keys["P17101/R4/C123/G0"]
    assert (prcg.project, prcg.run, prcg.clone, prcg.gen) == (17101, 4, 123, 0)
    assert prcg.group == "P17101/R4/C123"
    assert keys["misc/globals.csv"].project is None
    assert keys["misc/globals.csv"].group == "misc/globals.csv"
    assert WorkUnitKey.from_path(REAL).source == REAL.as_posix()
    # Overlapping inputs do not count a file twice.
    assert len(find_globals([tmp_path, wu_dir, wu_dir / "globals.csv"])) == 2
    with pytest.raises(ConfigError, match="does not exist"):
        find_globals([tmp_path / "nope"])


def test_garbage_step_far_out_is_schedule_mismatch(tmp_path: Path, real_lines: list[str]) -> None:
    garbage = "9" * 15 + real_lines[-1][len("1000000") :]
    wu = parse_globals(write(tmp_path, "\n".join([*real_lines, garbage]) + "\n"))
    assert wu.status is WorkUnitStatus.SCHEDULE_MISMATCH
    assert "implies" in wu.reason


def test_nan_inside_a_leg_makes_that_work_unusable_and_names_the_row(
    tmp_path: Path, real_lines: list[str]
) -> None:
    # Step 375000 is in the middle of the forward leg (250000..500000); the leg's end reads a
    # number again, but the sum over the leg is not to be trusted. File line 17 is that row.
    wu = parse_globals(write(tmp_path, with_field(real_lines, 375_000, "protocol_work", "nan")))
    assert wu.status is WorkUnitStatus.NAN
    assert wu.cycles[0].w_F is None
    assert wu.cycles[0].w_R == pytest.approx(GOLDEN_W_R, abs=1e-3)
    assert "forward leg (steps 250000..500000) at step 375000 (line 17)" in wu.reason
    assert real_lines[16].startswith("375000,")


def test_nan_outside_the_legs_is_noted(tmp_path: Path, real_lines: list[str]) -> None:
    # Step 625000 is in the equilibration at lambda=1, between the legs: no work uses it.
    wu = parse_globals(write(tmp_path, with_field(real_lines, 625_000, "protocol_work", "nan")))
    assert wu.status is WorkUnitStatus.OK
    assert wu.cycles[0].w_F == pytest.approx(GOLDEN_W_F, abs=1e-3)
    assert any("outside the switching legs at step 625000 (line 27)" in n for n in wu.notes)


def test_rows_out_of_order_are_put_back_in_order_and_noted(
    tmp_path: Path, real_lines: list[str]
) -> None:
    header, rows = real_lines[0], real_lines[1:]
    swapped = [*rows[:9], rows[10], rows[9], *rows[11:]]  # steps 250000 and 225000 swapped
    wu = parse_globals(write(tmp_path, "\n".join([header, *swapped]) + "\n"))
    assert wu.status is WorkUnitStatus.OK, wu.reason
    assert wu.cycles[0].w_F == pytest.approx(GOLDEN_W_F, abs=1e-3)
    (note,) = [n for n in wu.notes if "out of step order" in n]
    assert "line 12 (step 225000 after 250000)" in note


def test_resume_after_a_header_is_not_out_of_order(tmp_path: Path, real_lines: list[str]) -> None:
    header, rows = real_lines[0], real_lines[1:]
    wu = parse_globals(write(tmp_path, "\n".join([header, *rows[:20], header, *rows[15:]]) + "\n"))
    assert not any("out of step order" in n for n in wu.notes)


def test_work_beyond_the_plausible_bound_is_implausible(tmp_path: Path) -> None:
    path = write(tmp_path, globals_csv_text([(1.0, -1.0), (4.0e6, -2.0)]))
    wu = parse_globals(path)
    assert wu.status is WorkUnitStatus.IMPLAUSIBLE
    assert [c.status for c in wu.cycles] == [WorkUnitStatus.OK, WorkUnitStatus.IMPLAUSIBLE]
    assert wu.cycles[1].w_F == pytest.approx(4.0e6)  # the value is kept, for the record
    assert "|w_F| = 4e+06 kT beyond the plausible bound 10000 kT" in wu.reason
    assert [c.w_F for c in wu.ok_cycles()] == pytest.approx([1.0])
    assert parse_globals(path, max_abs_work_kT=None).status is WorkUnitStatus.OK
    assert parse_globals(path, max_abs_work_kT=1e7).status is WorkUnitStatus.OK
    assert parse_globals(REAL, max_abs_work_kT=150.0).status is WorkUnitStatus.IMPLAUSIBLE
