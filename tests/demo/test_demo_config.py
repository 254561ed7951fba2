"""DemoConfig checks its own fields: a bad value fails before any stage, as one line naming field, expected, actual."""
import pytest

from vjepa_ac.config import ConfigError, load_config
from vjepa_ac.demo import DemoConfig
from vjepa_ac.pretrain import PRESET_DIR

BAD = [  # (field, value, expected in the message)
    *[(name, 0, ">= 1") for name in ("episodes", "threads", "landscape_goals", "landscape_others", "horizon",
                                     "samples", "iterations", "eval_episodes")],
    *[(name, -1, ">= 0") for name in ("explore_episodes", "head_steps", "path_seeds", "baseline_episodes",
                                      "extra_episodes", "videos")],
    ("image_size", 8, ">= 16"),
    ("head_weight", float("inf"), "finite and >= 0"),
    ("head_weight", -1.0, "finite and >= 0"),
    ("latent_weight", float("nan"), "finite and >= 0"),
    ("energy_steps", "first", "'last' or 'all'"),
    ("topk", 1, "2..samples=100"),
    ("topk", 101, "2..samples=100"),
    ("maxnorm", 0.0, "> 0"),
    ("maxnorm", float("inf"), "> 0"),
    ("extra_max_steps", 0, "None or >= 1"),
    ("extra_tasks", ["fly"], "names among"),
]


@pytest.mark.parametrize("field,value,expected", BAD, ids=[f"{f}={v}" for f, v, _ in BAD])
def test_bad_field_is_refused_naming_field_expected_and_actual(field, value, expected):
    with pytest.raises(ValueError) as info:
        DemoConfig(**{field: value})
    message = str(info.value)
    assert message.startswith(f"{field}: expected ") and expected in message and repr(value) in message
    assert "\n" not in message


def test_presets_and_edge_values_are_accepted():
    for preset in ("demo-reach", "demo-toy"):
        load_config(DemoConfig, preset, PRESET_DIR)
    DemoConfig(explore_episodes=0, head_steps=0, path_seeds=0, baseline_episodes=0, extra_episodes=0, videos=0,
               image_size=16, head_weight=0.0, latent_weight=1.0, energy_steps="last", samples=2, topk=2,
               extra_max_steps=None, extra_tasks=[])


def test_bad_preset_value_is_a_config_error_naming_the_field():
    with pytest.raises(ConfigError, match=r"demo-toy\.yaml: horizon: expected >= 1, got 0"):
        load_config(DemoConfig, "demo-toy", PRESET_DIR, {"horizon": 0})
