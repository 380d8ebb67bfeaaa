"""The demo's own logic: what it submits, and its final comparison of each bundled example's
estimate with what is known of it; and the alchemiscale demo (``--source alchemiscale``).

The local demo runs end to end in tests/test_snakemake_side.py (slow); these pin the lines it
prints from the rows of ``fahflow.campaign.transformation_results``. The alchemiscale demo's
pieces (its config, identities, a network submitted once) run against a served stand-in
(``gufe``), and the whole demo on small Transformations to gathered estimates (``slow``).
"""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from fahflow import demo
from fahflow.campaign import task_rows
from fahflow.config import load_config

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

GUFE_ROW = {
    "transformation": "benzene_to_toluene_feflow",
    "Delta_f_kT": 1.5,
    "sigma_kT": 0.4,
    "Delta_f_kcal_per_mol": 0.89,
    "sigma_kcal_per_mol": 0.24,
    "protocol": "feflow.protocols.nonequilibrium_cycling.NonEquilibriumCyclingProtocol",
    "protocol_Delta_f_kcal_per_mol": 1.29,
    "protocol_sigma_kcal_per_mol": 0.32,
}


@pytest.fixture()
def printed(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    out = io.StringIO()
    monkeypatch.setattr(demo, "console", Console(file=out, width=300, color_system=None))
    return out


def test_gufe_row_shows_the_protocols_estimate_beside_fahflows(printed: io.StringIO) -> None:
    demo._compare_with_references([GUFE_ROW])
    line = printed.getvalue().strip()
    assert line == (
        "benzene_to_toluene_feflow: NonEquilibriumCyclingProtocol's gathered ΔG = 1.29 ± 0.32 "
        "kcal/mol; fahflow's BAR ΔG = 0.89 ± 0.24 kcal/mol (1.0 combined σ apart)"
    )


def test_gufe_row_without_a_bar_estimate_says_why(printed: io.StringIO) -> None:
    row = {k: v for k, v in GUFE_ROW.items() if "kcal" not in k or k.startswith("protocol")}
    del row["Delta_f_kT"], row["sigma_kT"]
    row["error"] = "no usable work pair"
    demo._compare_with_references([row])
    assert printed.getvalue().strip().endswith("; fahflow's BAR: no usable work pair")


def test_spec_examples_keep_their_references(printed: io.StringIO) -> None:
    harmonic = {"transformation": "harmonic", "Delta_f_kT": 8.3, "sigma_kT": 0.1}
    water = {
        "transformation": "water",
        "Delta_f_kT": 10.6,
        "sigma_kT": 0.5,
        "Delta_f_kcal_per_mol": 6.3,
        "sigma_kcal_per_mol": 0.3,
    }
    unknown = {"transformation": "mine", "Delta_f_kT": 1.0, "sigma_kT": 0.1}
    demo._compare_with_references([harmonic, water, unknown, {"transformation": "failed"}])
    lines = printed.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("harmonic: ΔF = 8.30 ± 0.10 kT; exact 8.318 kT (0.2 σ away)")
    assert lines[1].startswith("water: the estimate is ΔG(decouple), so ΔG_hyd = -6.30 ± 0.30")


def _config(tmp_path: Path) -> Path:
    """config/config.yaml with its queue, ledger and results in ``tmp_path``."""
    data = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    data["tasks"]["local"]["path"] = str(tmp_path / "queue.sqlite")
    data["ledger"]["path"] = str(tmp_path / "ledger.sqlite")
    data["batch"]["results_dir"] = str(tmp_path / "results")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_examples_go_to_an_empty_queue_only(tmp_path: Path, printed: io.StringIO) -> None:
    """A second demo carries on with the first one's campaign, and says so rather than
    seeming to run the example it was asked for."""
    path = _config(tmp_path)
    config = load_config(path)
    demo._submit_examples(path, config, ["harmonic"])
    assert [r["transformation"] for r in task_rows(config)] == ["harmonic"] * 4
    assert "submitted 4 Task(s) of the harmonic example" in printed.getvalue()
    demo._submit_examples(path, config, ["water"])
    assert len(task_rows(config)) == 4
    said = " ".join(printed.getvalue().split())
    assert f"the queue {tmp_path / 'queue.sqlite'} already holds 4 Task(s)" in said
    assert "not submitting water" in said


# --- the alchemiscale demo ---------------------------------------------------------------------


def test_the_shipped_alchemiscale_example_config_validates() -> None:
    config = load_config(REPO / "config" / "alchemiscale.example.yaml")
    assert config.tasks.source == "alchemiscale"
    settings = config.tasks.alchemiscale
    assert settings.compute.key_file is not None and settings.check_pushes is not None
    assert settings.registration_expire_s == 1800


def test_alchemiscale_demo_options_belong_to_their_source(run) -> None:
    code, _, err = run("demo", "--source", "alchemiscale", "--example", "harmonic")
    assert code == 1 and "--example is for --source local" in err
    code, _, err = run("demo", "--small")
    assert code == 1 and "--tasks and --small are for --source alchemiscale" in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.gufe
def test_alchemiscale_demo_config_identities_and_one_submission(
    tmp_path: Path, printed: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The derived config validates with the stand-in's URLs; the keys are files only the user
    reads, reused on a rerun; the network is submitted once, a rerun carries on with it."""
    from fahflow import demo_alchemiscale as ademo
    from fahflow.standin import Standin
    from fahflow.tasks.alchemiscale import credentials

    monkeypatch.setattr(ademo, "console", demo.console)  # the printed fixture's

    base = _config(tmp_path)
    paths = ademo.demo_paths(load_config(base))
    assert paths.home == tmp_path / "alchemiscale"
    standin = Standin(paths.standin)
    keys = ademo.add_identities(standin, paths)
    for identifier, key in keys.items():
        key_file = paths.key_file(identifier)
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_text().strip() == key
    with standin.serve() as urls:
        derived = ademo.write_config(base, paths, urls)
        config = load_config(derived)
        settings = config.tasks.alchemiscale
        assert (config.tasks.source, settings.scopes) == ("alchemiscale", [ademo.SCOPE])
        assert settings.compute.url == urls.compute and settings.check_pushes.url == urls.interface
        assert credentials(settings.compute, "compute")[2] == keys[ademo.COMPUTE_ID]
        assert config.ledger.path == tmp_path / "alchemiscale" / "ledger.sqlite"
        assert config.ws.data_dir == paths.sim and config.ws.ca == paths.sim / "ca" / "ca.pem"
        assert not any(key in derived.read_text() for key in keys.values())

        client = ademo.user_client(urls.interface, keys[ademo.USER_ID])
        network = ademo.submit_once(client, n_tasks=1)
        statuses = ademo.task_statuses(client, network)
        assert sorted(statuses.values()) == ["waiting", "waiting"]
        assert not ademo.all_final(client, network)
    # A rerun: a new Standin on the same root, identities added again with the same keys.
    standin = Standin(paths.standin)
    assert ademo.add_identities(standin, paths) == keys
    with standin.serve() as urls:
        client = ademo.user_client(urls.interface, keys[ademo.USER_ID])
        assert ademo.submit_once(client, n_tasks=3) == network
        assert len(ademo.task_statuses(client, network)) == 2
    said = " ".join(printed.getvalue().split())
    assert f"scope {ademo.SCOPE} already holds network {network} with 2 Task(s)" in said
    assert not any(key in said for key in keys.values())


@pytest.mark.gufe
@pytest.mark.slow
def test_alchemiscale_demo_runs_to_gathered_estimates_and_resumes(tmp_path: Path) -> None:
    """``fahflow demo --source alchemiscale --small`` end to end (the stand-in, the simulator,
    snakemake batches) to the user's gathered estimate of each Transformation; run again, it
    submits nothing and finds every Task complete."""
    for name in ("Snakefile", "workflow", "fah"):
        (tmp_path / name).symlink_to(REPO / name)
    data = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    port = _free_port()  # not the embedded default's 18443: another demo may be running
    data["ws"].update(url=f"https://127.0.0.1:{port}", as_url=f"https://127.0.0.1:{port}")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(data))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "fahflow", "demo", "--source", "alchemiscale", "--small"]

    def demo_run() -> str:
        result = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800
        )
        assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
        return " ".join(result.stdout.split())

    out = demo_run()
    assert "submitted network AlchemicalNetwork-" in out
    for name in ("benzene_to_toluene_feflow", "benzene_to_toluene_fah"):
        assert f"{name}: ΔG = " in out and f"{name}: no result" not in out
    assert out.count("kcal/mol (1 result(s), 0 failure(s))") == 2
    assert out.count(": complete") == 2
    keys = list((tmp_path / "run" / "alchemiscale" / "standin" / "keys").glob("*.key"))
    assert len(keys) == 2 and not any(k.read_text().strip() in out for k in keys)

    again = demo_run()
    assert "already holds network" in again and "submitted network" not in again
    assert again.count(": complete") == 2 and "batch 2" not in again
