"""State/action conventions against scipy, on numpy and torch, including ±pi and gimbal-lock neighbourhoods."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from droid_data.conventions import (
    euler_xyz_to_matrix,
    integrate_actions,
    matrix_to_euler_xyz,
    pose_diffs,
    to_camera_frame,
)


def wrap(angle):
    return (angle + np.pi) % (2 * np.pi) - np.pi


def hard_eulers(rng, n=400):
    """Random angles plus the awkward ones: near ±pi, exactly ±pi, and near/at gimbal lock (pitch ±pi/2)."""
    eulers = [rng.uniform(-np.pi, np.pi, (n, 3)) * [1, 0.5, 1]]
    near_pi = np.pi - 10.0 ** rng.uniform(-12, -2, (n, 3))
    eulers.append(near_pi * rng.choice([-1, 1], (n, 3)) * [1, 0.5, 1])
    lock = rng.uniform(-np.pi, np.pi, (n, 3))
    lock[:, 1] = (np.pi / 2 - 10.0 ** rng.uniform(-12, -2, n)) * rng.choice([-1, 1], n)
    eulers.append(lock)
    eulers.append(np.array([[np.pi, 0, -np.pi], [0, np.pi / 2, 0.3], [0.2, -np.pi / 2, -1.0], [0, 0, 0]]))
    return np.concatenate(eulers)


def test_euler_to_matrix_matches_scipy():
    eulers = hard_eulers(np.random.default_rng(0))
    expected = Rotation.from_euler("xyz", eulers).as_matrix()
    np.testing.assert_allclose(euler_xyz_to_matrix(eulers), expected, atol=1e-12)


def test_matrix_to_euler_reproduces_matrix_and_matches_scipy_away_from_lock():
    eulers = hard_eulers(np.random.default_rng(1))
    matrices = Rotation.from_euler("xyz", eulers).as_matrix()
    recovered = matrix_to_euler_xyz(matrices)
    # Always: the angles reproduce the rotation (also at and near gimbal lock).
    np.testing.assert_allclose(euler_xyz_to_matrix(recovered), matrices, atol=1e-12)
    assert np.all(np.abs(recovered[:, 1]) <= np.pi / 2 + 1e-12)
    # Away from lock the decomposition is unique: same angles as scipy up to 2*pi.
    free = np.abs(np.cos(eulers[:, 1])) > 1e-3
    scipy_angles = Rotation.from_matrix(matrices[free]).as_euler("xyz")
    np.testing.assert_allclose(wrap(recovered[free] - scipy_angles), 0, atol=1e-9)


def make_states(rng, shape):
    euler = rng.uniform(-np.pi, np.pi, (*shape, 3)) * [1, 0.5, 1]
    return np.concatenate([rng.normal(size=(*shape, 3)), euler, rng.uniform(0, 1, (*shape, 1))], -1)


def test_pose_diffs_matches_scipy_definition():
    states = make_states(np.random.default_rng(2), (30,))
    actions = pose_diffs(states)
    assert actions.shape == (29, 7)
    rot = Rotation.from_euler("xyz", states[:, 3:6])
    delta = (rot[1:] * rot[:-1].inv()).as_matrix()  # R_{t+1} R_t^T
    np.testing.assert_allclose(actions[:, :3], states[1:, :3] - states[:-1, :3], atol=1e-12)
    np.testing.assert_allclose(euler_xyz_to_matrix(actions[:, 3:6]), delta, atol=1e-12)
    np.testing.assert_allclose(actions[:, 6], np.diff(states[:, 6]), atol=1e-12)


def test_round_trip_batched_numpy():
    states = make_states(np.random.default_rng(3), (4, 5, 33))
    rebuilt = integrate_actions(states[..., 0, :], pose_diffs(states))
    assert rebuilt.shape == states.shape
    np.testing.assert_allclose(rebuilt[..., [0, 1, 2, 6]], states[..., [0, 1, 2, 6]], atol=1e-12)
    np.testing.assert_allclose(wrap(rebuilt[..., 3:6] - states[..., 3:6]), 0, atol=1e-9)


def test_integrate_matches_sequential_scipy_with_gripper_clipping():
    rng = np.random.default_rng(4)
    state = make_states(rng, (3,))
    actions = np.concatenate(
        [
            rng.normal(scale=0.05, size=(3, 17, 3)),
            rng.normal(scale=1.0, size=(3, 17, 3)),
            rng.uniform(-0.7, 0.7, (3, 17, 1)),
        ],
        -1,
    )
    out = integrate_actions(state, actions)
    for b in range(3):  # reference: one step at a time, as the official planner integrates
        current = state[b].copy()
        for t in range(17):
            rot = Rotation.from_euler("xyz", actions[b, t, 3:6]) * Rotation.from_euler("xyz", current[3:6])
            current = np.concatenate(
                [
                    current[:3] + actions[b, t, :3],
                    rot.as_euler("xyz"),
                    [np.clip(current[6] + actions[b, t, 6], 0, 1)],
                ]
            )
            np.testing.assert_allclose(out[b, t + 1, [0, 1, 2, 6]], current[[0, 1, 2, 6]], atol=1e-12)
            np.testing.assert_allclose(euler_xyz_to_matrix(out[b, t + 1, 3:6]), rot.as_matrix(), atol=1e-10)
    assert np.all((out[..., 6] >= 0) & (out[..., 6] <= 1))
    assert not np.allclose(
        out[..., 1:, 6], np.clip(state[:, None, 6] + np.cumsum(actions[..., 6], -1), 0, 1)
    ), "test data should exercise sequential clipping, which differs from clipping the cumulative sum"


def test_integrate_broadcasts_one_state_over_samples():
    rng = np.random.default_rng(5)
    state = make_states(rng, (1,))
    actions = rng.normal(scale=0.1, size=(8, 4, 7))
    out = integrate_actions(state, actions)
    assert out.shape == (8, 5, 7)
    np.testing.assert_allclose(out[:, 0], np.repeat(state, 8, 0))
    np.testing.assert_allclose(out[3], integrate_actions(state[0], actions[3]), atol=1e-12)


def test_zero_actions_return_the_state():
    state = make_states(np.random.default_rng(6), (2,))
    out = integrate_actions(state, np.zeros((2, 0, 7)))
    assert out.shape == (2, 1, 7)
    np.testing.assert_array_equal(out[:, 0], state)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_matches_numpy_and_keeps_dtype(dtype):
    states = make_states(np.random.default_rng(7), (2, 12))
    tensor = torch.tensor(states, dtype=dtype)
    actions = pose_diffs(tensor)
    assert isinstance(actions, torch.Tensor) and actions.dtype == dtype and actions.device == tensor.device
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(actions.double().numpy(), pose_diffs(states), atol=tol * 10)
    rebuilt = integrate_actions(tensor[:, 0], actions)
    assert rebuilt.dtype == dtype
    np.testing.assert_allclose(
        euler_xyz_to_matrix(rebuilt.double().numpy()[..., 3:6]),
        euler_xyz_to_matrix(states[..., 3:6]),
        atol=tol * 100,
    )
    np.testing.assert_allclose(rebuilt.double().numpy()[..., :3], states[..., :3], atol=tol * 100)


def test_torch_gradients_flow():
    actions = torch.zeros(2, 3, 7, dtype=torch.float64)
    actions[..., 0] = 0.1
    actions.requires_grad_(True)
    state = torch.tensor([0.3, 0.1, 0.2, 0.1, 0.2, 0.3, 0.5], dtype=torch.float64)
    integrate_actions(state, actions)[..., -1, 0].sum().backward()
    assert torch.allclose(actions.grad[..., 0], torch.ones(2, 3, dtype=torch.float64))


def test_to_camera_frame_matches_homogeneous_inverse():
    rng = np.random.default_rng(8)
    states = make_states(rng, (6,))
    extrinsics = make_states(rng, (6,))[:, :6]

    def homogeneous(pose):
        out = np.eye(4)
        out[:3, :3] = Rotation.from_euler("xyz", pose[3:6]).as_matrix()
        out[:3, 3] = pose[:3]
        return out

    camera = to_camera_frame(states, extrinsics)
    for t in range(6):
        expected = np.linalg.inv(homogeneous(extrinsics[t])) @ homogeneous(states[t])
        np.testing.assert_allclose(homogeneous(camera[t]), expected, atol=1e-12)
    np.testing.assert_array_equal(camera[:, 6], states[:, 6])
    # one static camera pose broadcasts over time
    np.testing.assert_allclose(
        to_camera_frame(states, extrinsics[0])[2], to_camera_frame(states[2], extrinsics[0])
    )


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"states: expected shape \[\.\.\., 7\]"):
        pose_diffs(np.zeros((5, 6)))
    with pytest.raises(ValueError, match="actions"):
        integrate_actions(np.zeros(7), np.zeros(7))


angle = st.floats(-np.pi, np.pi, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (6, 3), elements=angle), arrays(np.float64, (6, 4), elements=st.floats(0, 1)))
def test_round_trip_property(eulers, rest):
    eulers[:, 1] /= 2
    states = np.concatenate([rest[:, :3], eulers, rest[:, 3:]], axis=1)
    rebuilt = integrate_actions(states[0], pose_diffs(states))
    np.testing.assert_allclose(rebuilt[:, [0, 1, 2, 6]], states[:, [0, 1, 2, 6]], atol=1e-9)
    np.testing.assert_allclose(
        euler_xyz_to_matrix(rebuilt[:, 3:6]), euler_xyz_to_matrix(states[:, 3:6]), atol=1e-9
    )
