"""Each CLONE's own State and Integrator (fahflow.protocol.clones)."""

from __future__ import annotations

import bz2
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fahflow.protocol.build import build_work_unit
from fahflow.protocol.clones import PER_CLONE_FILES, write_clone_files
from fahflow.protocol.spec import example_path, load_spec


@pytest.fixture(scope="module")
def wu_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("harmonic")
    build_work_unit(load_spec(example_path("harmonic")), out, seed=5)
    return out


def _xml(path: Path) -> ET.Element:
    return ET.fromstring(bz2.decompress(path.read_bytes()))


def _vectors(state: ET.Element, tag: str) -> list[tuple[str, str, str]]:
    return [(v.get("x"), v.get("y"), v.get("z")) for v in state.find(tag)]


def test_each_clone_gets_its_own_velocities_and_seed(wu_dir: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert write_clone_files(wu_dir, [(a, 101), (b, 202)], temperature_K=300.0) == [a, b]
    wu_state = _xml(wu_dir / "state.xml.bz2")
    states = [_xml(d / "state.xml.bz2") for d in (a, b)]
    for state in states:  # only the velocities are redrawn
        assert _vectors(state, "Positions") == _vectors(wu_state, "Positions")
        assert state.find("Parameters").attrib == wu_state.find("Parameters").attrib
    assert _vectors(states[0], "Velocities") != _vectors(states[1], "Velocities")
    assert _vectors(states[0], "Velocities") != _vectors(wu_state, "Velocities")
    seeds = [_xml(d / "integrator.xml.bz2").get("randomSeed") for d in (a, b)]
    assert seeds == ["101", "202"]
    assert _xml(wu_dir / "integrator.xml.bz2").get("randomSeed") == "0"  # the WU's is left alone


def test_same_seed_same_bytes_and_done_clones_are_left_alone(wu_dir: Path, tmp_path: Path) -> None:
    first, again = tmp_path / "first", tmp_path / "again"
    write_clone_files(wu_dir, [(first, 7)], temperature_K=300.0)
    write_clone_files(wu_dir, [(again, 7)], temperature_K=300.0)
    for name in PER_CLONE_FILES:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    stamps = {name: (first / name).stat().st_mtime_ns for name in PER_CLONE_FILES}
    assert write_clone_files(wu_dir, [(first, 8)], temperature_K=300.0) == []  # a re-run
    assert {name: (first / name).stat().st_mtime_ns for name in PER_CLONE_FILES} == stamps
    assert write_clone_files(wu_dir, [], temperature_K=300.0) == []
