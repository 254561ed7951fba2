"""Planner names -> classes, so scripts build a planner from flags in one way (evaluate.py, deploy.py)."""
from __future__ import annotations

from dataclasses import fields

from planning.cem import CEMConfig, CEMPlanner
from planning.gradient import GradientConfig, GradientPlanner
from planning.mppi import MPPIConfig, MPPIPlanner

PLANNERS = {"cem": (CEMPlanner, CEMConfig), "mppi": (MPPIPlanner, MPPIConfig),
            "gradient": (GradientPlanner, GradientConfig)}


def build_planner(name: str, overrides: dict | None = None, *, energy=None):
    """Planner `name` with its config's defaults except `overrides` (config fields; None means "the default").

    A field the planner's config does not have is an error (e.g. `topk` for MPPI) rather than silently ignored.
    `energy` is an optional energy object (planning.energy); the config's own `energy` field names the latent distance.
    """
    if name not in PLANNERS:
        raise ValueError(f"planner: expected one of {sorted(PLANNERS)}, got {name!r}")
    planner_class, config_class = PLANNERS[name]
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = sorted(set(given) - {f.name for f in fields(config_class)})
    if unknown:
        raise ValueError(f"planner {name!r}: {config_class.__name__} has no option(s) {unknown}")
    return planner_class(config_class(**given), energy=energy)
