"""SimController: the envs simulator behind the FrankaController interface."""
import numpy as np
import pytest

from robot.backends.sim import SimController
from robot.recording import RecordingController


@pytest.fixture(scope="module")
def sim():
    controller = SimController("FrankaReach-v0", seed=1, image_size=32)
    yield controller
    controller.close()


def test_observe_and_step(sim):
    sim.home()
    obs = sim.observe()
    assert obs["rgb"].shape == (32, 32, 3) and obs["rgb"].dtype == np.uint8
    assert obs["state"].dtype == np.float64 and obs["state"].shape == (7,) and obs["joints"].shape == (7,)
    np.testing.assert_array_equal(sim.observe(images=False)["state"], obs["state"])
    result = sim.step([0.02, -0.01, 0.0, 0, 0, 0, 0])
    assert result.limited == ()
    np.testing.assert_allclose(result.state[:3] - obs["state"][:3], [0.02, -0.01, 0.0], atol=0.005)
    with pytest.raises(ValueError, match=r"shape \(7,\)"):
        sim.step([0.0] * 6)


def test_gripper_delta_is_relative_to_the_measured_closedness(sim):
    sim.home()
    sim.env.gripper_command = 1.0  # as if the fingers were blocked by an object: command 1, measured ~0
    measured = sim.observe(images=False)["state"][6]
    result = sim.step([0, 0, 0, 0, 0, 0, 0.2])
    assert sim.env.gripper_command == pytest.approx(measured + 0.2)
    assert result.applied[6] == pytest.approx(0.2)


def test_stop_home_and_recording(sim, tmp_path):
    from droid_data import read_episode

    robot = RecordingController(sim)
    robot.home()
    robot.observe()
    robot.step([0.03, 0, 0, 0, 0, 0, 0])
    robot.stop()
    joints = sim.env.robot.joints(sim.env.data)
    np.testing.assert_allclose(sim.env.data.ctrl[sim.env.robot.arm_actuators], joints)  # servos hold here
    robot.observe()
    episode = read_episode(robot.write_episode(tmp_path / "ep", fps=4.0))
    assert episode.num_frames == 2
    assert episode.actions[0][0] == pytest.approx(0.03, abs=0.005)  # pose_diffs sees the executed motion
