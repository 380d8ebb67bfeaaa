"""The main job with alchemiscale as the Task source: ``fahflow demo --source alchemiscale``.

What an operator serving a real alchemiscale server does (docs/alchemiscale.md), on the embedded
default: a stand-in alchemiscale server (:mod:`fahflow.standin`: alchemiscale's own compute and
user APIs) with one compute identity for fahflow and one user identity, the simulated WS with its
volunteers, a config with ``tasks.source: alchemiscale``; the user submits the bundled network
(benzene → toluene with feflow's and with alchemiscale-fah's protocol, one AlchemicalNetwork) with
alchemiscale's own ``AlchemiscaleClient``; ``snakemake --profile fah`` batches run until every
Task on the server is complete or error; then the user's view: the protocol's gathered ΔG per
Transformation and each Task's status, read back through the same client.

Everything lives in its own folder (:func:`demo_paths`: ``run/alchemiscale/`` and
``results/alchemiscale/`` for the embedded default): its own simulated WS and ledger, so that
its PRCG ids never meet the local-queue demo's. Rerunning it carries on: the identities' keys,
the stand-in's state and the source's registration are kept, and the network is submitted only
when the scope holds none yet.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fahflow.atomic import write_text
from fahflow.config import AlchemiscaleSettings, FahflowConfig, load_config
from fahflow.demo import console, run_batches, start_simulator
from fahflow.errors import ConfigError

if TYPE_CHECKING:
    from alchemiscale.interface.client import AlchemiscaleClient
    from alchemiscale.models import ScopedKey

    from fahflow.standin import Standin, Urls

SCOPE = "fahflow-demo-benzene"
"""Where the demo's user submits (org-campaign-project) and the compute identity claims from."""
COMPUTE_ID = "fahflow-demo-compute"
USER_ID = "fahflow-demo-user"
SERVICE_ID = "fahflow_demo"
"""The compute service's name (alchemiscale ids are ``<name>-<uuid>``, so no ``-``)."""
SMALL = {"num_cycles": 2, "eq_steps": 500, "neq_steps": 500, "work_freq": 100}
"""``--small``: 2 cycles of 500-step legs (2,000 steps a WU) instead of 4 of 2,500."""
FINAL = frozenset({"complete", "error", "invalid", "deleted"})
"""Task statuses nothing more happens to without the user (an error waits for a restart)."""


@dataclass(frozen=True)
class DemoPaths:
    """Where the alchemiscale demo keeps everything (relative paths: to the working directory)."""

    home: Path
    results: Path

    @property
    def config(self) -> Path:
        return self.home / "config.yaml"

    @property
    def standin(self) -> Path:
        return self.home / "standin"

    @property
    def sim(self) -> Path:
        return self.home / "sim"

    def key_file(self, identifier: str) -> Path:
        """As ``fahflow standin identity add`` keeps them: ROOT/keys/ID.key, mode 0600."""
        return self.standin / "keys" / f"{identifier}.key"


def demo_paths(config: FahflowConfig) -> DemoPaths:
    """``alchemiscale/`` beside the config's ledger (``run/``) and in its results folder."""
    return DemoPaths(
        home=config.ledger.path.parent / "alchemiscale",
        results=config.batch.results_dir / "alchemiscale",
    )


def ensure_key(path: Path) -> str:
    """The key in ``path``; a new random one written there (0600) the first time. Never printed."""
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return key
    key = secrets.token_urlsafe(32)
    write_text(path, key + "\n", perms=0o600)
    return key


def add_identities(standin: Standin, paths: DemoPaths) -> dict[str, str]:
    """The compute identity (fahflow) and the user identity, both limited to :data:`SCOPE`;
    their keys (identifier → key) from their key files. Idempotent."""
    keys = {}
    for kind, identifier in (("compute", COMPUTE_ID), ("user", USER_ID)):
        keys[identifier] = ensure_key(paths.key_file(identifier))
        standin.add_identity(kind, identifier, keys[identifier], [SCOPE])  # type: ignore[arg-type]
    return keys


def write_config(base_path: Path, paths: DemoPaths, urls: Urls) -> Path:
    """The demo's config with ``tasks.source: alchemiscale`` against ``urls``, and its own WS
    root, ledger and results (written to ``paths.config``, validated; returns its path).

    The compute identity claims from :data:`SCOPE`; ``check_pushes`` uses the user identity, so
    that a push whose answer was lost is settled by looking, not held.
    """
    data = yaml.safe_load(Path(base_path).read_text())
    sim = paths.sim
    data["ws"].update(
        cert=str(sim / "operator" / "operator.crt"),
        key=str(sim / "operator" / "operator.key"),
        ca=str(sim / "ca" / "ca.pem"),
        data_dir=str(sim),
    )
    data["tasks"].update(
        source="alchemiscale",
        service_id=SERVICE_ID,
        alchemiscale={
            "compute": {
                "url": urls.compute,
                "identifier": COMPUTE_ID,
                "key_file": str(paths.key_file(COMPUTE_ID)),
            },
            "scopes": [SCOPE],
            "registration_expire_s": AlchemiscaleSettings().registration_expire_s,
            "state": str(paths.home / "source.sqlite"),
            "check_pushes": {
                "url": urls.interface,
                "identifier": USER_ID,
                "key_file": str(paths.key_file(USER_ID)),
            },
        },
    )
    data["ledger"]["path"] = str(paths.home / "ledger.sqlite")
    data["batch"]["results_dir"] = str(paths.results)
    header = (
        f"# Written by `fahflow demo --source alchemiscale` from {base_path} (rewritten by each\n"
        "# run: the stand-in's ports change). Every key: config/README.md, docs/alchemiscale.md.\n"
    )
    write_text(paths.config, header + yaml.safe_dump(data, sort_keys=False))
    load_config(paths.config)
    return paths.config


def bundled_transformations(small: bool = False) -> list[Any]:
    """The example's two Transformations (feflow's protocol, alchemiscale-fah's): the bundled
    JSON files, or built with :data:`SMALL` cycles."""
    from fahflow.kinds import gufe_example

    if small:
        return list(gufe_example.transformations(gufe_example.Cycles(**SMALL)).values())
    import gufe

    return [
        gufe.Transformation.from_json(file=str(gufe_example.EXAMPLES_DIR / name))
        for name in (gufe_example.FEFLOW_JSON, gufe_example.FAH_JSON)
    ]


def submit_once(client: AlchemiscaleClient, n_tasks: int, small: bool = False) -> ScopedKey:
    """The network in :data:`SCOPE`: the one already there (a rerun carries on with it), else
    the bundled one, submitted now with ``n_tasks`` actioned Tasks per Transformation."""
    from alchemiscale.models import Scope

    from fahflow.standin.user import submit

    held = client.query_networks(scope=Scope.from_str(SCOPE))
    if held:
        network = held[0]
        tasks = client.get_network_tasks(network)
        console.print(
            f"scope {SCOPE} already holds network {network} with {len(tasks)} Task(s): carrying "
            "on with it, submitting nothing (delete the demo's run/alchemiscale/ and "
            "results/alchemiscale/ to start afresh)"
        )
        return network
    submitted = submit(client, bundled_transformations(small), SCOPE, n_tasks)
    console.print(f"submitted network {submitted['network']} to scope {SCOPE}:")
    for transformation, tasks in submitted["tasks"].items():
        console.print(f"  {transformation}: {len(tasks)} Task(s)")
    return submitted["network"]


def task_statuses(client: AlchemiscaleClient, network: ScopedKey) -> dict[str, str]:
    """Each Task of the network → its status, as the user sees it."""
    tasks = client.get_network_tasks(network)
    return {str(t): str(s) for t, s in zip(tasks, client.get_tasks_status(tasks), strict=True)}


def all_final(client: AlchemiscaleClient, network: ScopedKey) -> bool:
    statuses = task_statuses(client, network)
    return bool(statuses) and set(statuses.values()) <= FINAL


def print_user_view(client: AlchemiscaleClient, network: ScopedKey) -> list[dict[str, Any]]:
    """Per Transformation the protocol's gathered ΔG ± σ with its results and failures, then
    each of its Tasks with its status; returns :func:`fahflow.standin.user.gather`'s rows."""
    from fahflow.standin.user import gather

    statuses = task_statuses(client, network)
    rows = gather(client, network)
    for row in rows:
        if row["dG_kcal_per_mol"] is None:
            figure = "no result"
        else:
            dg, sigma = row["dG_kcal_per_mol"], row["dG_sigma_kcal_per_mol"]
            figure = f"ΔG = {dg:.2f} ± {sigma:.2f} kcal/mol"
        console.print(
            f"{row['name'] or row['transformation']}: {figure} ({row['n_results']} result(s), "
            f"{row['n_failures']} failure(s))",
            highlight=False,
        )
        for task in client.get_transformation_tasks(row["transformation"]):
            console.print(f"  {task}: {statuses.get(str(task), '?')}", highlight=False)
    return rows


def user_client(url: str, key: str) -> AlchemiscaleClient:
    """alchemiscale's own user client as the demo's user."""
    from alchemiscale.interface.client import AlchemiscaleClient

    return AlchemiscaleClient(url, USER_ID, key, use_local_cache=False, max_retries=2)


def run_alchemiscale_demo(
    config_path: Path,
    *,
    n_tasks: int = 1,
    small: bool = False,
    profile: str = "fah",
    max_batches: int = 100,
    ports: tuple[int, int] = (0, 0),
) -> int:
    """Run the alchemiscale campaign; returns the exit status of the last batch (0: all done).

    ``config_path`` is the local demo's config (``config/config.yaml``): its WS, projects and
    settings are used, with the paths of :func:`demo_paths`. ``ports``: the stand-in's compute
    and user API ports (0: free ones).
    """
    try:
        import alchemiscale.interface.client  # noqa: F401
        import gufe  # noqa: F401

        from fahflow.standin import Standin
    except ImportError as exc:
        raise ConfigError(
            f"the alchemiscale demo needs alchemiscale and the gufe stack (environment.yml; "
            f"here scripts/bootstrap installs them): {exc}"
        ) from None
    for chatty in ("httpx", "kartograf"):  # a line per HTTP request; a banner per mapping step
        logging.getLogger(chatty).setLevel(logging.WARNING)
    paths = demo_paths(load_config(config_path))
    standin = Standin(
        paths.standin, registration_expire_s=int(AlchemiscaleSettings().registration_expire_s)
    )
    keys = add_identities(standin, paths)
    with standin.serve(*ports) as urls:
        console.print(
            f"stand-in alchemiscale at {urls.compute} (compute API) and {urls.interface} (user "
            f"API), state in {paths.standin}; identities {COMPUTE_ID} and {USER_ID} (keys in "
            f"{paths.standin / 'keys'}/, mode 0600)",
            highlight=False,
        )
        derived = write_config(config_path, paths, urls)
        config = load_config(derived)
        console.print(f"fahflow's config: {derived} (tasks.source: alchemiscale)")
        client = user_client(urls.interface, keys[USER_ID])
        with start_simulator(derived, config) as sim:
            network = submit_once(client, n_tasks, small)
            status = run_batches(
                derived, config, sim, lambda: all_final(client, network), profile, max_batches
            )
            console.rule("what the user sees (alchemiscale's AlchemiscaleClient)")
            print_user_view(client, network)
    console.print(
        f"afterwards: `fahflow status --config {derived}`, `fahflow standin status --root "
        f"{paths.standin}`",
        highlight=False,
    )
    return status
