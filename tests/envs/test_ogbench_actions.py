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
