"""Behaviour of the Franka envs: control convention, goal images, success, seeding, gymnasium/torchrl APIs."""
import gymnasium as gym
import numpy as np
import pytest

import envs
from droid_data.conventions import euler_xyz_to_matrix, matrix_to_euler_xyz, pose_diffs
from envs.policies import make_policy
from envs.scene import CUBE_HALF, SceneConfig


@pytest.fixture(scope="module")
def reach():
    env = envs.FrankaReachEnv()
    yield env
    env.close()


@pytest.fixture(scope="module")
def push():
    env = envs.FrankaPushEnv()
    yield env
    env.close()


def test_observation_and_info_follow_the_contract(reach):
    obs, info = reach.reset(seed=3)
    assert obs["rgb"].shape == (64, 64, 3) and obs["rgb"].dtype == np.uint8
    assert obs["state"].shape == (7,) and obs["joints"].shape == (7,)
    assert info["goal_rgb"].shape == (64, 64, 3) and info["goal_rgb"].dtype == np.uint8
    assert info["goal_state"].shape == (7,) and isinstance(info["is_success"], bool)
    # state = [xyz, extrinsic Euler xyz of the EE rotation, gripper]
    pos, rot = reach.ee_pose()
    np.testing.assert_allclose(obs["state"][:3], pos, atol=1e-6)
    np.testing.assert_allclose(euler_xyz_to_matrix(obs["state"][3:6].astype(float)), rot, atol=1e-5)


def test_controller_tracks_a_commanded_delta(reach):
    reach.reset(seed=0)
    pos, rot = reach.ee_pose()
    action = np.array([0.04, -0.03, 0.02, 0.0, 0.0, 0.1, 0.0])
    applied = reach.apply_delta(action)
    np.testing.assert_allclose(applied, action)  # within the clamps: executed as asked
    new_pos, new_rot = reach.ee_pose()
    np.testing.assert_allclose(new_pos - pos, action[:3], atol=2e-3)
    np.testing.assert_allclose(matrix_to_euler_xyz(new_rot @ rot.T), action[3:6], atol=5e-3)


@pytest.mark.parametrize("control_hz", [4.0, 15.0])
def test_actions_match_pose_diffs_of_consecutive_states(control_hz):
    env = envs.FrankaReachEnv(control_hz=control_hz)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    scale = 4.0 / control_hz  # the same speeds at both rates
    states, actions = [env.state()], []
    for _ in range(12):
        action = np.concatenate([rng.uniform(-0.03, 0.03, 3) * scale, rng.uniform(-0.05, 0.05, 3) * scale, [0.0]])
        actions.append(env.apply_delta(action))
        states.append(env.state())
    env.close()
    diffs, actions = pose_diffs(np.array(states)), np.array(actions)
    np.testing.assert_allclose(diffs[:, :3], actions[:, :3], atol=3e-3 * scale)
    np.testing.assert_allclose(diffs[:, 3:6], actions[:, 3:6], atol=1e-2 * scale)
    # relative to the size of the moves: within 5% on average
    assert np.linalg.norm(diffs[:, :3] - actions[:, :3]) < 0.05 * np.linalg.norm(actions[:, :3])


def test_clamps_and_bad_actions(reach):
    reach.reset(seed=2)
    applied = reach.apply_delta(np.array([1.0, 0, 0, 0, 0, 2.0, 5.0]))
    assert np.isclose(np.linalg.norm(applied[:3]), 0.075)  # 0.3 m/s at 4 Hz
    assert np.isclose(np.linalg.norm(applied[3:6]), 0.15)  # 0.6 rad/s at 4 Hz
    assert applied[6] == reach.controller.config.max_gripper_delta
    fast = envs.FrankaReachEnv(control_hz=15)
    fast.reset(seed=2)
    assert np.isclose(np.linalg.norm(fast.apply_delta(np.array([1.0, 0, 0, 0, 0, 0, 0]))[:3]), 0.3 / 15)
    fast.close()
    with pytest.raises(ValueError, match=r"action: expected shape \[7\]"):
        reach.step(np.zeros(6))
    with pytest.raises(ValueError, match="finite"):
        reach.step(np.array([np.nan, 0, 0, 0, 0, 0, 0]))


def test_gripper_delta_closes_and_opens(reach):
    reach.reset(seed=4)
    reach.apply_delta(np.array([0, 0, 0, 0, 0, 0, 1.0]))
    assert reach.state()[6] > 0.95
    reach.apply_delta(np.array([0, 0, 0, 0, 0, 0, -0.5]))
    assert abs(reach.state()[6] - 0.5) < 0.05


def test_goal_image_is_a_render_of_the_goal_configuration(push):
    obs, info = push.reset(seed=5)
    assert np.abs(info["goal_rgb"].astype(int) - obs["rgb"].astype(int)).mean() > 1.0
    push.set_config(push.goal_config)
    np.testing.assert_array_equal(push.render(), info["goal_rgb"])
    np.testing.assert_allclose(push.state(), info["goal_state"], atol=1e-5)
    assert push.is_success()  # the goal configuration solves the task


def test_reach_success_flag(reach):
    _, info = reach.reset(seed=6)
    assert not info["is_success"]  # starts 8-25 cm from the goal
    assert 0.08 <= info["distance"] <= 0.25
    goal = reach.goal_config
    reach.set_config(goal)
    assert reach.is_success()
    pos, rot = reach.ee_pose()
    for offset, expected in [(0.03, True), (0.05, False)]:
        q, err, _ = reach.controller.solve_ik(goal.joints, pos + [0, 0, offset], rot, iterations=100)
        assert err < 1e-3
        reach.set_config(SceneConfig(q, 0.0))
        assert reach.is_success() is expected


def test_cube_success_flag(push):
    push.reset(seed=7)
    spot = push.goal_config.object_pos
    start = push.robot.joints(push.data)
    for offset, expected in [(0.0, True), (0.04, True), (0.06, False)]:
        push.set_config(SceneConfig(start, 0.0, spot + [offset, 0, 0]))
        assert push.is_success() is expected
    assert spot[2] == pytest.approx(CUBE_HALF)


def test_seeding_is_deterministic():
    runs = []
    for _ in range(2):
        env = gym.make("FrankaPush-v0")
        obs, info = env.reset(seed=11)
        env.action_space.seed(11)
        trace = [obs["state"], info["goal_state"], obs["rgb"]]
        for _ in range(4):
            obs, *_ = env.step(env.action_space.sample())
            trace += [obs["state"], obs["joints"], obs["rgb"]]
        runs.append(trace)
        env.close()
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    other = gym.make("FrankaPush-v0")
    assert not np.array_equal(other.reset(seed=12)[1]["goal_state"], runs[0][1])


def test_truncation_by_step_budget():
    env = gym.make("FrankaReach-v0", max_steps=3)
    env.reset(seed=0)
    flags = [env.step(np.zeros(7))[3] for _ in range(3)]
    assert flags == [False, False, True]
    env.close()


@pytest.mark.parametrize("env_id", [env_id for env_id, _ in envs.TASKS.values()])
def test_gymnasium_env_checker(env_id):
    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


def test_torchrl_gym_wrapper_rollout():
    from torchrl.envs import GymEnv, GymWrapper

    env = GymWrapper(gym.make("FrankaReach-v0", max_steps=5))
    env.set_seed(0)
    rollout = env.rollout(5)
    assert rollout["next", "rgb"].shape == (5, 64, 64, 3)
    assert rollout["next", "observation"].shape == (5, 7)  # torchrl's name for a "state" entry
    assert rollout["next", "joints"].shape == (5, 7)
    assert rollout["next", "truncated"][-1].item()
    env.close()
    env = GymEnv("FrankaPush-v0", max_steps=2, image_size=32)
    rollout = env.rollout(2)
    assert rollout["next", "rgb"].shape == (2, 32, 32, 3) and rollout["next", "truncated"][-1].item()
    env.close()


def test_options_and_wrist_camera():
    env = gym.make("FrankaReach-v0", wrist_camera=True, camera="ext2", image_size=48)
    obs, info = env.reset(seed=0)
    assert obs["wrist_rgb"].shape == obs["rgb"].shape == info["goal_rgb"].shape == (48, 48, 3)
    assert np.abs(obs["wrist_rgb"].astype(int) - obs["rgb"].astype(int)).mean() > 5
    env.close()
    with pytest.raises(TypeError, match="unexpected keyword argument 'image_px'"):
        gym.make("FrankaReach-v0", image_px=64)
    with pytest.raises(ValueError, match="camera: expected one of"):
        gym.make("FrankaReach-v0", camera="top")


def test_reach_oracle_solves_episodes(reach):
    policy = make_policy("reach", "oracle")
    solved = 0
    for seed in range(10):
        obs, info = reach.reset(seed=100 + seed)
        policy.reset(np.random.default_rng(seed))
        for _ in range(reach.max_steps):
            obs, _, _, truncated, info = reach.step(policy(obs, info))
            if info["is_success"] or truncated:
                break
        solved += info["is_success"]
    assert solved == 10


def test_camera_extrinsics_project_the_gripper_into_the_image(reach):
    """camera_pose follows DROID's convention (camera pose in the base frame, OpenCV axes): the EE expressed
    in the camera frame projects onto the orange fingers in the render."""
    from droid_data.conventions import to_camera_frame

    size = reach.config.image_size
    focal = 0.5 * size / np.tan(np.radians(reach.model.cam_fovy[reach.model.camera("ext1").id]) / 2)
    for seed in range(3):
        obs, _ = reach.reset(seed=seed)
        x, y, z = to_camera_frame(reach.state(), reach.camera_pose("ext1"))[:3]
        assert z > 0.5  # in front of the camera
        u, v = int(focal * x / z + size / 2), int(focal * y / z + size / 2)  # y down: row index
        patch = obs["rgb"][max(v - 2, 0):v + 3, max(u - 2, 0):u + 3].reshape(-1, 3).astype(int)
        orange = (patch[:, 0] > 150) & (patch[:, 0] - patch[:, 2] > 80)
        assert orange.any(), f"seed {seed}: no gripper colour around pixel ({u}, {v})"


def test_rotation_clamp_limits_the_true_angle_not_the_euler_norm(reach):
    """Euler (pi - 0.05, pi, pi) is a 0.05 rad rotation; scaling its Euler vector would command another one."""
    from scipy.spatial.transform import Rotation

    clamp = reach.controller.clamp
    small = np.array([0, 0, 0, np.pi - 0.05, np.pi, np.pi, 0])
    kept = clamp(small)
    # within the limit: the same rotation as asked
    np.testing.assert_allclose(euler_xyz_to_matrix(kept[3:6]), euler_xyz_to_matrix(small[3:6]), atol=1e-9)
    big = np.array([0, 0, 0, 0.4, -0.3, 0.2, 0])
    limited = clamp(big)
    angle = np.linalg.norm(Rotation.from_euler("xyz", limited[3:6]).as_rotvec())
    assert np.isclose(angle, reach.controller.max_rotation)
    # same axis as the asked rotation
    axis_asked = Rotation.from_euler("xyz", big[3:6]).as_rotvec()
    axis_done = Rotation.from_euler("xyz", limited[3:6]).as_rotvec()
    np.testing.assert_allclose(axis_done / angle, axis_asked / np.linalg.norm(axis_asked), atol=1e-9)
