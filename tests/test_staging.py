"""The WS file layout (fahflow.ws.layout) and the two stagings (fahflow.ws.staging).

Both stagings are run against the same simulated WS: its data directory is what colocated
staging writes into, and its file API is what API staging talks to, so one set of assertions
shows that stage and collect see the same thing whichever the config chose.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fahflow.config import WorkServerSettings
from fahflow.errors import ConfigError, NotFound
from fahflow.ws import layout
from fahflow.ws.client import WorkServerClient
from fahflow.ws.models import ProjectData
from fahflow.ws.staging import ApiStaging, ColocatedStaging, Staging, open_staging

PROJECT = 12
RESULTS = "$home/RUN$run/CLONE$clone/results$gen"

# --- layout -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$home/RUN$run/core.xml", "RUN3/core.xml"),
        ("$home/RUN$run/CLONE$clone/state.xml.bz2", "RUN3/CLONE7/state.xml.bz2"),
        ("$home/RUN$run/CLONE$clone/results$gen", "RUN3/CLONE7/results2"),
        ("$home/p$project/r${run}c${clone}/x", "p12/r3c7/x"),  # $project: only sim/ had it
    ],
)
def test_send_path_substitutes_every_ws_variable(template: str, expected: str) -> None:
    assert layout.send_path(template, PROJECT, 3, 7, 2) == expected


@pytest.mark.parametrize("template", ["$home/RUN$run/$atoms.xml", "$home/RUN$run/$"])
def test_send_path_names_the_entry_and_the_variables_the_ws_knows(template: str) -> None:
    with pytest.raises(ConfigError, match=r"ws\.send.*\$home, \$project, \$run, \$clone, \$gen"):
        layout.send_path(template, PROJECT, 0, 0)


def test_collected_results_layout_round_trips_through_the_analysis_pattern() -> None:
    folder = layout.results_dir(PROJECT, 3, 7, 1)
    assert folder.as_posix() == "PROJ12/RUN3/CLONE7/results1"
    assert folder.parent == layout.clone_dir(PROJECT, 3, 7)
    assert layout.gen_of(folder) == 1
    match = layout.RESULT_FILE.search(f"results/tasks/t/globals/{folder}/globals.csv")
    assert match is not None and tuple(map(int, match.groups())) == (PROJECT, 3, 7, 1)
    assert layout.RESULT_FILE.search(f"{folder}/sub/globals.csv") is None
    assert layout.ws_file(PROJECT, "RUN3/core.xml") == "PROJ12/RUN3/core.xml"


def test_highest_gen_probes_upward_and_defaults_to_zero() -> None:
    probed: list[int] = []

    def has(gen: int) -> bool:
        probed.append(gen)
        return gen <= 2

    assert layout.highest_gen(has) == 2 and probed == [1, 2, 3]
    assert layout.highest_gen(lambda gen: False) == 0
    assert layout.highest_gen(lambda gen: True) == layout.MAX_GENS - 1


def test_the_old_import_path_still_works() -> None:
    from fahflow.ws.layout import gen_over_api

    assert gen_over_api is layout.gen_over_api


# --- both stagings against one simulated WS --------------------------------------------------


@pytest.fixture
def client(sim, operator_identity) -> Iterator[WorkServerClient]:
    ident = operator_identity
    with WorkServerClient(ident.url, cert=ident.cert, verify=ident.ca_path, retries=0) as ws:
        ws.put_project(
            PROJECT, ProjectData(core_id="0x23", contact=ident.email, atoms=10, credit=1)
        )
        yield ws


@pytest.fixture(params=["colocated", "api"])
def staging(request, sim, client) -> Staging:
    if request.param == "colocated":
        return ColocatedStaging(sim.root, RESULTS)
    return ApiStaging(client)


def _returned(sim, run: int, clone: int, gen: int, files: dict[str, str]) -> Path:
    """What the WS writes when a WU comes back."""
    folder = sim.project_home(PROJECT) / f"RUN{run}" / f"CLONE{clone}" / f"results{gen}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_place_puts_the_file_where_the_ws_packs_it_from(sim, staging, tmp_path: Path) -> None:
    src = tmp_path / "state.xml.bz2"
    src.write_bytes(b"state of clone 4")
    staging.place(PROJECT, "RUN0/CLONE4/state.xml.bz2", src, per_clone=True)
    served = sim.project_home(PROJECT) / "RUN0" / "CLONE4" / "state.xml.bz2"
    assert served.read_bytes() == b"state of clone 4"
    src.write_bytes(b"state of clone 4, drawn again")
    staging.place(PROJECT, "RUN0/CLONE4/state.xml.bz2", src, per_clone=True)
    assert served.read_bytes() == b"state of clone 4, drawn again"


def test_results_of_the_gen_that_was_run(sim, staging, tmp_path: Path) -> None:
    _returned(sim, 0, 1, 0, {"globals.csv": "Step,Time\n0,0\n", "science.log": "ok\n"})
    assert staging.result_gen(PROJECT, 0, 1) == 0
    staging.fetch_result(PROJECT, 0, 1, 0, "globals.csv", tmp_path / "g0" / "globals.csv")
    assert (tmp_path / "g0" / "globals.csv").read_text() == "Step,Time\n0,0\n"
    # a WS that numbers the one GEN from 1 (alchemiscale-fah's mock): GEN 1 is collected
    _returned(sim, 0, 1, 1, {"globals.csv": "Step,Time\n1,1\n"})
    assert staging.result_gen(PROJECT, 0, 1) == 1
    assert staging.result_gen(PROJECT, 0, 2) == 0  # nothing returned: the fetch will say so
    with pytest.raises(NotFound):
        staging.fetch_result(PROJECT, 0, 1, 1, "science.log", tmp_path / "g1" / "science.log")
    assert not (tmp_path / "g1" / "science.log").exists()


def test_colocated_keeps_a_file_the_runs_clones_share(tmp_path: Path) -> None:
    """A RUN-level file in place may be read by running CLONEs: it is never replaced."""
    staging = ColocatedStaging(tmp_path / "data", RESULTS)
    src = tmp_path / "system.xml.bz2"
    src.write_bytes(b"first")
    staging.place(PROJECT, "RUN0/system.xml.bz2", src, per_clone=False)
    src.write_bytes(b"second")
    staging.place(PROJECT, "RUN0/system.xml.bz2", src, per_clone=False)
    assert (tmp_path / "data" / "PROJ12" / "RUN0" / "system.xml.bz2").read_bytes() == b"first"


def test_colocated_reads_results_where_ws_results_says(tmp_path: Path) -> None:
    data = tmp_path / "data"
    staging = ColocatedStaging(data, "$home/returned/$run-$clone/gen$gen")
    folder = data / "PROJ12" / "returned" / "2-5" / "gen0"
    folder.mkdir(parents=True)
    (folder / "globals.csv").write_text("Step\n")
    assert staging.result_gen(PROJECT, 2, 5) == 0
    staging.fetch_result(PROJECT, 2, 5, 0, "globals.csv", tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == "Step\n"
    with pytest.raises(NotFound, match=r"missing on the WS filesystem: .*gen0/science\.log"):
        staging.fetch_result(PROJECT, 2, 5, 0, "science.log", tmp_path / "out.log")


def _settings(tmp_path: Path, **changes: object) -> WorkServerSettings:
    values = {"url": "https://ws.invalid", "cert": "c.pem", "key": "k.pem"}
    values.update({"data_dir": str(tmp_path)}, **changes)
    return WorkServerSettings.model_validate(values)


def test_open_staging_follows_the_config_and_makes_a_client_only_for_the_api(
    tmp_path: Path,
) -> None:
    made: list[object] = []

    def client() -> object:
        made.append(object())
        return made[-1]

    colocated = open_staging(_settings(tmp_path, results="$home/r$run"), client)  # type: ignore[arg-type]
    assert isinstance(colocated, ColocatedStaging) and made == []
    assert (colocated.data_dir, colocated.results) == (tmp_path, "$home/r$run")
    api = open_staging(_settings(tmp_path, staging="api"), client)  # type: ignore[arg-type]
    assert isinstance(api, ApiStaging) and api.client is made[0]
    hand_made = _settings(tmp_path).model_copy(update={"data_dir": None})
    with pytest.raises(ConfigError, match=r"ws\.data_dir is required"):
        open_staging(hand_made, client)  # type: ignore[arg-type]
