"""planning.registry: the one way scripts build a planner from flags."""
import pytest

from planning.cem import CEMConfig, CEMPlanner
from planning.mppi import MPPIPlanner
from planning.registry import PLANNERS, build_planner


@pytest.mark.parametrize("name", PLANNERS)
def test_unset_flags_keep_the_planner_defaults(name):
    planner_class, config_class = PLANNERS[name]
    planner = build_planner(name, {"samples": None, "iterations": None})
    assert isinstance(planner, planner_class)
    assert planner.config == config_class()


def test_given_fields_override_and_misapplied_ones_are_errors():
    planner = build_planner("cem", {"samples": 32, "topk": 4, "energy": "l2"})
    assert isinstance(planner, CEMPlanner) and planner.config == CEMConfig(samples=32, topk=4, energy="l2")
    with pytest.raises(ValueError, match=r"MPPIConfig has no option\(s\) \['topk'\]"):
        build_planner("mppi", {"topk": 4})
    with pytest.raises(ValueError, match="expected one of"):
        build_planner("random", {})
    assert isinstance(build_planner("mppi", {"temperature": 0.5}), MPPIPlanner)
