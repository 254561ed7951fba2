"""The planning energy as a file: what a run's planner minimised, so `evaluate` and `deploy` plan with it too.

A run that plans with more than the official latent L1 (the demo: latent L1 plus an end-effector head term,
`planning.energy.StateHeadEnergy`) saves its energy beside the model as a small YAML file, ``energy.yaml``:

    format: vjepa_ac.energy/1
    kind: l1              # latent distance: l1 (official) or l2
    steps: all            # which predicted steps count: last (official) or all (summed over the horizon)
    latent_weight: 1.0    # weight of the latent distance
    head_weight: 10.0     # weight of the distance between head estimates (energy units per metre); 0: no head
    head: state_head.pt   # the head's checkpoint (vjepa_ac.state_head), relative to this file

and the head as its own checkpoint (``save_state_head``: tensors and plain values, loaded with
``weights_only=True``). ``vjepa-evaluate --energy energy.yaml`` (and ``vjepa-deploy``) rebuild exactly the
energy object the run planned with; ``--head FILE`` names another head. Errors are one line naming the file
and the field.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from planning.common import ENERGIES, ENERGY_STEPS
from planning.energy import LatentDistance, StateHeadEnergy
from vjepa_ac.config import ConfigError, finite_nonnegative, from_dict, need, read_yaml, save_yaml

ENERGY_FORMAT = "vjepa_ac.energy/1"


@dataclass
class EnergyConfig:
    """A planning energy (planning.energy): latent distance, plus a head term when ``head_weight`` > 0."""

    format: str = ENERGY_FORMAT  # schema of the file
    kind: str = "l1"  # latent distance: l1 (official, mean |z - z_goal|) or l2 (mean squared difference)
    steps: str = "last"  # predicted steps scored: last (official) or all (summed over the horizon)
    latent_weight: float = 1.0  # weight of the latent distance (0: head term only)
    head_weight: float = 0.0  # weight of the head-estimate distance, energy units per metre (0: no head)
    head: str | None = None  # state-head checkpoint, relative to the energy file; required when head_weight > 0

    def __post_init__(self):
        need(self.format == ENERGY_FORMAT, "format", repr(ENERGY_FORMAT), self.format)
        need(self.kind in ENERGIES, "kind", f"one of {list(ENERGIES)}", self.kind)
        need(self.steps in ENERGY_STEPS, "steps", f"one of {list(ENERGY_STEPS)}", self.steps)
        need(finite_nonnegative(self.latent_weight), "latent_weight", "a finite number >= 0", self.latent_weight)
        need(finite_nonnegative(self.head_weight), "head_weight", "a finite number >= 0", self.head_weight)
        need(self.latent_weight + self.head_weight > 0, "latent_weight + head_weight", "> 0",
             self.latent_weight + self.head_weight)


def save_energy(cfg: EnergyConfig, path: str | os.PathLike) -> Path:
    """Write ``cfg`` as YAML (atomically); ``cfg.head`` should be relative to ``path``'s folder."""
    save_yaml(cfg, path)
    return Path(path)


def read_energy(path: str | os.PathLike) -> EnergyConfig:
    """The energy file's fields, checked: '<file>: <field>: expected ..., got ...' otherwise (ConfigError)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such energy file (expected a YAML file of {ENERGY_FORMAT})")
    return from_dict(EnergyConfig, read_yaml(path), source=str(path))


def head_path(cfg: EnergyConfig, energy_file: str | os.PathLike) -> Path | None:
    """The head checkpoint of an energy file, resolved against the file's folder (None: no head named)."""
    if cfg.head is None:
        return None
    return Path(energy_file).parent / cfg.head


def build_energy(cfg: EnergyConfig, head=None, source: str = "energy"):
    """The energy object: `LatentDistance` without a head term, else `StateHeadEnergy` over ``head``."""
    if cfg.head_weight == 0:
        return LatentDistance(cfg.kind, cfg.steps)
    if head is None:
        raise ConfigError(f"{source}: head: expected a state-head checkpoint (head_weight is {cfg.head_weight}), "
                          f"got none")
    return StateHeadEnergy(head, head_weight=cfg.head_weight, latent_weight=cfg.latent_weight, kind=cfg.kind,
                           steps=cfg.steps)


def load_energy(path: str | os.PathLike, head: str | os.PathLike | None = None, steps: str | None = None):
    """The energy of an energy file; ``head`` replaces the file's head checkpoint, ``steps`` its steps."""
    from dataclasses import replace

    from vjepa_ac.state_head import load_state_head

    cfg = read_energy(path)
    if steps is not None:
        cfg = replace(cfg, steps=steps)
    head_file = Path(head) if head is not None else head_path(cfg, path)
    if cfg.head_weight == 0:
        if head is not None:
            raise ConfigError(f"{path}: head_weight: expected > 0 to use the head {head}, got 0")
        return build_energy(cfg)
    if head_file is None:
        raise ConfigError(f"{path}: head: expected a state-head checkpoint (head_weight is {cfg.head_weight}), "
                          f"got none")
    return build_energy(cfg, load_state_head(head_file), source=str(path))
