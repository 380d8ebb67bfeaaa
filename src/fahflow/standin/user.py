"""The user's side, through alchemiscale's own ``AlchemiscaleClient``: submit, gather, restart.

Each function takes a client, so the same calls work against the stand-in and a real
alchemiscale server.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gufe
    from alchemiscale.interface.client import AlchemiscaleClient
    from alchemiscale.models import ScopedKey


def network_of(objects: Iterable[Any], name: str | None = None) -> gufe.AlchemicalNetwork:
    """One AlchemicalNetwork from Transformations and/or AlchemicalNetworks (their edges)."""
    import gufe

    edges: list[gufe.Transformation] = []
    for obj in objects:
        if isinstance(obj, gufe.AlchemicalNetwork):
            edges.extend(obj.edges)
        elif isinstance(obj, gufe.Transformation):
            edges.append(obj)
        else:
            raise TypeError(f"not a Transformation or AlchemicalNetwork: {type(obj).__name__}")
    if not edges:
        raise ValueError("nothing to submit: no Transformation given")
    return gufe.AlchemicalNetwork(edges=edges, name=name)


def submit(
    client: AlchemiscaleClient,
    transformations_or_network: Any,
    scope: str,
    tasks_per_transformation: int,
    extends_chain: bool = False,
) -> dict[str, Any]:
    """Create the network in ``scope``, then ``tasks_per_transformation`` Tasks per Transformation,
    actioned on the network's TaskHub.

    Parameters
    ----------
    transformations_or_network
        An AlchemicalNetwork, a Transformation, or an iterable of them.
    scope
        ``org-campaign-project``, specific (no ``*``).
    extends_chain
        Each Transformation's Tasks form a chain: Task i+1 extends Task i (it can be claimed only
        once Task i is complete, and starts from its result).

    Returns
    -------
    dict
        ``network`` (ScopedKey), ``tasks`` (Transformation ScopedKey → its Task ScopedKeys, in
        creation order), ``actioned`` (the Task ScopedKeys actioned).
    """
    import gufe
    from alchemiscale.models import Scope

    if tasks_per_transformation < 1:
        raise ValueError(f"tasks per Transformation: {tasks_per_transformation} (at least 1)")
    objects = transformations_or_network
    if isinstance(objects, gufe.AlchemicalNetwork):
        network = objects
    else:
        network = network_of([objects] if isinstance(objects, gufe.Transformation) else objects)
    network_sk = client.create_network(network, Scope.from_str(scope), visualize=False)
    tasks: dict[ScopedKey, list[ScopedKey]] = {}
    for transformation in client.get_network_transformations(network_sk):
        if extends_chain:
            chain: list[ScopedKey] = []
            for _ in range(tasks_per_transformation):
                extends = chain[-1] if chain else None
                chain += client.create_tasks(transformation, extends=extends, count=1)
            tasks[transformation] = chain
        else:
            tasks[transformation] = client.create_tasks(
                transformation, count=tasks_per_transformation
            )
    every = [t for chain in tasks.values() for t in chain]
    actioned = [t for t in client.action_tasks(every, network_sk) if t is not None]
    return {"network": network_sk, "tasks": tasks, "actioned": actioned}


def gather(client: AlchemiscaleClient, network_sk: ScopedKey) -> list[dict[str, Any]]:
    """Per Transformation of the network: ``transformation`` (ScopedKey), ``name``,
    ``n_results``, ``n_failures``, ``dG_kcal_per_mol`` and ``dG_sigma_kcal_per_mol`` (floats;
    ``None`` while no result is in), from the protocol's own ``gather`` of the results."""
    rows = []
    for transformation_sk in client.get_network_transformations(network_sk):
        transformation = client.get_transformation(transformation_sk, visualize=False)
        pdrs = client.get_transformation_results(
            transformation_sk, return_as="ProtocolDAGResults", visualize=False
        )
        failures = client.get_transformation_failures(transformation_sk, visualize=False)
        estimate = sigma = None
        if pdrs:  # what get_transformation_results does by default, without a second download
            result = transformation.gather(pdrs)
            estimate = _kcal_per_mol(result.get_estimate())
            sigma = _kcal_per_mol(result.get_uncertainty())
        rows.append(
            {
                "transformation": transformation_sk,
                "name": transformation.name,
                "n_results": len(pdrs),
                "n_failures": len(failures),
                "dG_kcal_per_mol": estimate,
                "dG_sigma_kcal_per_mol": sigma,
            }
        )
    return rows


def _kcal_per_mol(quantity: Any) -> float:
    from openff.units import unit

    return float(quantity.to(unit.kilocalorie_per_mole).magnitude)


def restart_errored(client: AlchemiscaleClient, network_sk: ScopedKey) -> list[str]:
    """Set every errored Task of the network back to waiting; the ScopedKeys (str) restarted."""
    errored = client.get_network_tasks(network_sk, status="error")
    if not errored:
        return []
    return [str(t) for t in client.set_tasks_status(errored, "waiting") if t is not None]
