"""The bundled gufe example: benzene → toluene in water, one Transformation, two protocols.

``src/fahflow/examples/benzene_toluene_feflow.json`` runs it with feflow's
``NonEquilibriumCyclingProtocol`` (its FAH core settings then come from fahflow's config) and
``benzene_toluene_fah.json`` with alchemiscale-fah's ``FahNonEquilibriumCyclingProtocol`` (its
``fah_settings`` are the core.xml), so that both paths of :mod:`fahflow.kinds.gufe` have a small
real input. Both are the JSON gufe writes (``Transformation.to_json``, a keyed chain).

The settings are cut down to run on 2 cores in minutes, not for a converged ΔG: 4 cycles (one
CLONE each), 10 ps legs, and a cube box with 1.0 nm padding — openfe's default dodecahedron with
1.5 nm padding costs twice the atoms, and a small ligand with a tight box trips "cutoff greater
than half the box" (docs/gufe.md). The ligands are embedded by RDKit with a fixed seed and
toluene is shape-aligned onto benzene before Kartograf maps them, so the files are reproducible:
``python -m fahflow.kinds.gufe_example`` rewrites them, ``--check`` says whether the committed
ones are what this code makes (tests/test_gufe_example.py runs it). Tests that want a smaller
run build the same Transformation with another :class:`Cycles` (``transformations(Cycles(...))``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the stack is an optional extra: imported only when the example is built
    import gufe

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
FEFLOW_JSON = "benzene_toluene_feflow.json"
FAH_JSON = "benzene_toluene_fah.json"

RDKIT_SEED = 42
NUM_CYCLES = 4  # one simulation unit per cycle, one CLONE per unit
EQ_STEPS = 2500  # per equilibrium leg: 10 ps at feflow's 4 fs timestep
NEQ_STEPS = 2500  # per nonequilibrium leg
WORK_FREQ = 250  # steps between work samples (feflow) and globals.csv rows (FAH): 10 per leg
SOLVENT_PADDING_NM = 1.0
# One cycle of the example (10,000 steps, 738 atoms) took 68 s on this 2-core machine's CPU
# platform with feflow's own cycle unit (benchmarks/gufe_setup.py --cycle), its setup 11 s.
PLATFORM = "CPU"  # the setup unit runs on the fahflow host, which need not have a GPU


@dataclass(frozen=True)
class Cycles:
    """How much NEQ cycling a Transformation asks for (the rest of its settings are fixed)."""

    num_cycles: int = NUM_CYCLES
    eq_steps: int = EQ_STEPS
    neq_steps: int = NEQ_STEPS
    work_freq: int = WORK_FREQ

    def __post_init__(self) -> None:
        if self.eq_steps % self.work_freq or self.neq_steps % self.work_freq:
            raise ValueError(f"{self}: work_freq must divide eq_steps and neq_steps")


def ligand(smiles: str, name: str) -> gufe.SmallMoleculeComponent:
    """A ligand with hydrogens and one 3-D conformer embedded from a fixed seed."""
    import gufe
    from rdkit import Chem
    from rdkit.Chem import AllChem

    molecule = Chem.AddHs(Chem.MolFromSmiles(smiles))
    if AllChem.EmbedMolecule(molecule, randomSeed=RDKIT_SEED) != 0:
        raise RuntimeError(f"RDKit could not embed {name} ({smiles}) with seed {RDKIT_SEED}")
    return gufe.SmallMoleculeComponent.from_rdkit(molecule, name=name)


def end_states() -> tuple[gufe.ChemicalSystem, gufe.ChemicalSystem, gufe.LigandAtomMapping]:
    """Benzene and toluene, each in water (TIP3P, 0.15 M NaCl), and Kartograf's mapping."""
    import gufe
    import openfe
    from kartograf.atom_aligner import align_mol_shape

    benzene = ligand("c1ccccc1", "benzene")
    toluene = align_mol_shape(ligand("Cc1ccccc1", "toluene"), ref_mol=benzene)
    mapping = next(openfe.KartografAtomMapper().suggest_mappings(benzene, toluene))
    solvent = gufe.SolventComponent()
    state_a = gufe.ChemicalSystem({"ligand": benzene, "solvent": solvent}, name="benzene in water")
    state_b = gufe.ChemicalSystem({"ligand": toluene, "solvent": solvent}, name="toluene in water")
    return state_a, state_b, mapping


def cut_down(settings: gufe.settings.Settings, cycles: Cycles) -> gufe.settings.Settings:
    """The settings both protocols share: few short cycles in a small cube box, PME."""
    from openff.units import unit

    settings.num_cycles = cycles.num_cycles
    settings.integrator_settings.equilibrium_steps = cycles.eq_steps
    settings.integrator_settings.nonequilibrium_steps = cycles.neq_steps
    settings.work_save_frequency = cycles.work_freq
    settings.traj_save_frequency = cycles.eq_steps  # a multiple of the work frequency (checked)
    settings.solvation_settings.box_shape = "cube"
    settings.solvation_settings.solvent_padding = SOLVENT_PADDING_NM * unit.nanometer
    settings.forcefield_settings.nonbonded_method = "PME"
    settings.engine_settings.compute_platform = PLATFORM
    return settings


def feflow_protocol(cycles: Cycles) -> gufe.Protocol:
    from feflow.protocols import NonEquilibriumCyclingProtocol

    settings = cut_down(NonEquilibriumCyclingProtocol.default_settings(), cycles)
    return NonEquilibriumCyclingProtocol(settings)


def fah_protocol(cycles: Cycles) -> gufe.Protocol:
    """alchemiscale-fah's protocol: ``fah_settings`` is the core.xml of each cycle's WU."""
    from alchemiscale_fah.protocols.feflow import FahNonEquilibriumCyclingProtocol

    settings = cut_down(FahNonEquilibriumCyclingProtocol.default_settings(), cycles)
    core = settings.fah_settings
    core.numSteps = 2 * cycles.eq_steps + 2 * cycles.neq_steps  # one cycle per WU (checked)
    core.globalVarFreq = cycles.work_freq  # divides both legs, so each leg's ends are rows
    core.xtcFreq = core.numSteps  # one frame per WU: the example does not look at trajectories
    core.precision = "mixed"
    core.minimize = 1  # required by the protocol: its setup leaves minimization to the core
    return FahNonEquilibriumCyclingProtocol(settings)


def transformations(cycles: Cycles = Cycles()) -> dict[str, gufe.Transformation]:
    """File name → the example's Transformation with that protocol."""
    import gufe

    state_a, state_b, mapping = end_states()
    return {
        name: gufe.Transformation(
            state_a, state_b, protocol, mapping=mapping, name=f"benzene_to_toluene_{tag}"
        )
        for name, tag, protocol in (
            (FEFLOW_JSON, "feflow", feflow_protocol(cycles)),
            (FAH_JSON, "fah", fah_protocol(cycles)),
        )
    }


def render() -> dict[str, str]:
    """File name → the JSON text gufe writes for it (one trailing newline)."""
    return {name: t.to_json() + "\n" for name, t in transformations().items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fahflow.kinds.gufe_example", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=EXAMPLES_DIR, help="folder to write to")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file under --out differs"
    )
    args = parser.parse_args(argv)
    logging.getLogger("kartograf").setLevel(logging.WARNING)  # its INFO lines trace each step
    from fahflow.atomic import write_text

    stale = []
    for name, text in render().items():
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
        else:
            write_text(path, text)
            print(f"wrote {path}")
    for path in stale:
        print(f"{path} is not what {parser.prog} makes: run it without --check", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
