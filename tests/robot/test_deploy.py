"""vjepa-deploy (scripts/deploy.py) end to end: a random-weight AC checkpoint planning against a real sim server
process."""
import json
import threading
import time

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from robot_server_process import running_server

import envs  # noqa: F401  registers the tasks
from droid_data import read_episode
from robot.client import FrankaClient
from vjepa_ac import ac_train, runtime
from vjepa_ac.cli import deploy as cli

SEED = 3


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A random-weight checkpoint in the AC-training layout and the goal image of the server's episode."""
    folder = tmp_path_factory.mktemp("deploy_inputs")
    torch.manual_seed(0)
    cfg = ac_train.load_ac_config("ac-smoke")
    encoder = runtime.build_encoder(ac_train.encoder_spec(cfg))
    predictor = runtime.build_predictor(ac_train.predictor_spec(cfg, encoder.embed_dim))
    torch.save({"encoder": encoder.state_dict(), "predictor": predictor.state_dict(),
                "config": ac_train.checkpoint_config(cfg, encoder, {}, None)}, folder / "ac.pt")
    env = gym.make("FrankaReach-v0", image_size=32)
    _, info = env.reset(seed=SEED)
    Image.fromarray(info["goal_rgb"]).save(folder / "goal.png")
    env.close()
    return folder / "ac.pt", folder / "goal.png"


def deploy_args(endpoint, checkpoint, goal, out, steps):
    return ["--controller", endpoint, "--checkpoint", str(checkpoint), "--goal-image", str(goal),
            "--out", str(out), "--max-steps", str(steps), "--samples", "16", "--iterations", "2", "--horizon", "1",
            "--device", "cpu", "--log-level", "WARNING", "--timeout", "1"]


def test_episode_end_to_end(inputs, tmp_path):
    checkpoint, goal = inputs
    with running_server("--seed", str(SEED), "--max-translation", "0.04") as (_, endpoint):
        extrinsics = ["0.9", "-0.7", "0.75", "-2.0", "0.1", "0.6"]
        episode = cli.deploy(cli.parse_args(deploy_args(endpoint, checkpoint, goal, tmp_path, steps=4)
                                            + ["--camera-extrinsics", *extrinsics]))
        with FrankaClient(endpoint, timeout_s=5.0) as client:
            counts = client.ping()["counts"]
    assert counts["steps_executed"] == 4

    data = read_episode(episode)
    assert data.num_frames == 5  # the observation after homing, then one after every action
    log = [json.loads(line) for line in (episode / "deploy_log.jsonl").read_text().splitlines()]
    assert [e["cmd"] for e in log] == ["home", "observe"] + ["step", "observe"] * 4
    observed = np.array([e["state"] for e in log if e["cmd"] == "observe"])
    np.testing.assert_allclose(data.states, observed, atol=1e-6)
    assert data.joint_positions.shape == (5, 7) and data.roles["ext1"] == "exterior"
    assert data.load_frames("ext1").shape == (5, 32, 32, 3)
    with h5py.File(episode / "trajectory.h5") as h5:
        np.testing.assert_allclose(h5["observation/camera_extrinsics/exterior_left"][:],
                                   np.tile(np.array(extrinsics, float), (5, 1)))
    for event in (e for e in log if e["cmd"] == "step"):
        assert len(event["request"]) == 7 and np.linalg.norm(event["applied"][:3]) <= 0.04 + 1e-9
    assert (episode / "goal.png").is_file()
    metadata = json.loads(next(episode.glob("metadata_*.json")).read_text())
    assert metadata["backend"] == "network" and metadata["error"] is None


def test_server_killed_mid_episode_fails_fast_and_keeps_the_record(inputs, tmp_path, capsys):
    checkpoint, goal = inputs
    with running_server("--seed", str(SEED)) as (process, endpoint):
        killed_at = []

        def kill_after_three_steps():
            with FrankaClient(endpoint, timeout_s=5.0) as watcher:
                deadline = time.monotonic() + 60
                while watcher.ping()["counts"].get("steps_executed", 0) < 3 and time.monotonic() < deadline:
                    time.sleep(0.01)
            process.kill()
            killed_at.append(time.monotonic())

        threading.Thread(target=kill_after_three_steps, daemon=True).start()
        args = deploy_args(endpoint, checkpoint, goal, tmp_path, steps=500)
        args[args.index("--timeout") + 1] = "0.5"
        code = cli.main(args)
    assert code == 1 and killed_at
    assert "did not answer" in capsys.readouterr().err.splitlines()[-1]  # the error line, after the step log
    episode = next(tmp_path.glob("deploy_*"))
    data = read_episode(episode)
    assert data.num_frames >= 3  # the start plus at least the first two steps (the kill may beat the third)
    log = [json.loads(line) for line in (episode / "deploy_log.jsonl").read_text().splitlines()]
    failed = [e for e in log if "error" in e]
    assert len(failed) == 1 and "ServerUnavailable" in failed[0]["error"]
    assert failed[0]["seconds"] < 1.0  # the client noticed the dead server within a second
    metadata = json.loads(next(episode.glob("metadata_*.json")).read_text())
    assert "ServerUnavailable" in metadata["error"]


def test_no_server_is_a_clear_error_before_anything_moves(inputs, tmp_path, capsys):
    checkpoint, goal = inputs
    assert cli.main(deploy_args("tcp://127.0.0.1:9", checkpoint, goal, tmp_path, steps=1)) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: --controller tcp://127.0.0.1:9:") and "did not answer 'ping'" in line
    assert not list(tmp_path.iterdir())  # nothing recorded: nothing happened
