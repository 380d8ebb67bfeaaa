"""`fahflow build-wu` and `fahflow propose-projects` through the real console entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from fahflow.cli import main
from fahflow.cli.status import ERROR, SUCCESS
from fahflow.protocol.spec import example_path


def test_build_wu_prints_facts_and_writes_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "wu"
    assert main(["build-wu", str(example_path("harmonic")), str(out), "--seed", "4"]) == SUCCESS
    text = capsys.readouterr().out
    assert "atoms     4" in text
    assert "method    NoCutoff" in text
    assert "numSteps  3000" in text
    for name in ("core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2"):
        assert (out / name).is_file()
        assert str(out / name) in text


def test_build_wu_accepts_bundled_example_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build-wu", "example:harmonic", str(tmp_path)]) == SUCCESS
    assert "harmonic" in capsys.readouterr().out


def test_build_wu_bad_spec_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(example_path("harmonic").read_text().replace("eq_steps: 250", "eq_steps: -1"))
    assert main(["build-wu", str(bad), str(tmp_path / "out")]) == ERROR
    err = capsys.readouterr().err
    assert f"{bad}: eq_steps" in err and "-1" in err
    assert not (tmp_path / "out").exists()


def test_propose_projects_table(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["propose-projects", "--min-atoms", "1000", "--max-atoms", "9000", "--count", "3"]
    assert main([*args, "--nonbonded", "NoCutoff"]) == SUCCESS
    text = capsys.readouterr().out
    assert "NoCutoff" in text
    # n² evenly spaced from 1000 to 9000 atoms: the middle rung is sqrt((1e6 + 8.1e7) / 2)
    assert "6404" in text and "1000" in text and "9000" in text
    assert main([*args, "--nonbonded", "Magic"]) != SUCCESS
