"""The 7-D DROID <-> OGBench 5-D action maps (no OGBench needed)."""
import numpy as np

from envs.ogbench_cube import NATIVE_LIMITS, droid_action, native_action, wrap_angle


def test_action_maps_are_inverse_on_the_movable_axes():
    state = np.array([0.4, 0.1, 0.2, 0.0, 0.0, 3.1, 0.2])
    target = state + np.array([0.03, -0.01, 0.02, 0.0, 0.0, 0.1, 0.5])
    a5 = native_action(state, target)
    np.testing.assert_allclose(a5 * NATIVE_LIMITS, [0.03, -0.01, 0.02, wrap_angle(0.1), 0.5], atol=1e-6)
    np.testing.assert_allclose(droid_action(state, target)[[0, 1, 2, 5, 6]], [0.03, -0.01, 0.02, 0.1, 0.5], atol=1e-9)
    # Beyond OGBench's per-native-step limits the action saturates instead of wrapping.
    assert native_action(state, state + np.array([1.0, 0, 0, 0, 0, 0, 0]))[0] == 1.0


def test_collect_cli_bad_flag_is_one_line(tmp_path, capsys):
    from vjepa_ac.cli import collect_ogbench

    assert collect_ogbench.main(["--episodes", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--episodes" in err[0] and "0" in err[0]
