"""Scripted data collection in DROID's raw layout (what V-JEPA 2-AC trains on), or in memory.

One episode = reset, then `max_steps` control steps of a scripted policy (envs/policies.py), recording the
observation after the reset and after every step: frame i of every camera goes with state row i, and the
recording rate is the env's control rate (stored as the episode's fps).

    collect_episodes("push", 50, seed=0)                 # -> iterator of SimEpisode (nothing on disk)
    collect_episodes("push", 50, seed=0, out="data/push")  # -> list of episode folders (droid_data layout)
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from envs.franka_env import EnvConfig
from envs.policies import POLICY_KINDS, make_policy

TASK_TEXT = {
    "reach": "move the gripper to the goal position",
    "push": "push the green cube to the goal spot",
    "pick_place": "pick up the green cube and place it at the goal spot",
}


@dataclass
class SimEpisode:
    task: str
    policy: str  # which scripted policy drove it (oracle, noisy_<task>_expert, random)
    seed: int  # env.reset seed; the policy's generator is seeded with it too
    fps: float  # = control rate: frame i and state row i are one control period apart
    states: np.ndarray  # [T, 7] xyz, Euler 'xyz', gripper closedness
    joints: np.ndarray  # [T, 7]
    actions: np.ndarray  # [T-1, 7] the clamped deltas the controller executed
    frames: dict[str, np.ndarray]  # camera name -> uint8 [T, H, W, 3]
    camera_extrinsics: dict[str, np.ndarray]  # camera name -> [T, 6] pose in the base frame (OpenCV axes)
    success: bool  # success at the last step
    ever_success: bool
    goal_state: np.ndarray  # [7]
    goal_rgb: np.ndarray  # uint8 [H, W, 3]
    path: Path | None = field(default=None)


def episode_seed(seed: int, index: int) -> int:
    """Per-episode seed: episodes are independent and reproducible one by one."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def task_name(task: str) -> str:
    """Short task name ("reach", "push", "pick_place") from itself or its gymnasium id ("FrankaPush-v0")."""
    from envs import TASKS

    for name, (env_id, _) in TASKS.items():
        if task in (name, env_id):
            return name
    choices = sorted(TASKS) + sorted(env_id for env_id, _ in TASKS.values())
    raise ValueError(f"task: expected one of {choices}, got {task!r}")


def collect_episodes(task: str, episodes: int, seed: int = 0, *, out: str | Path | None = None,
                     policy: str = "mixed", image_size: int = 64, control_hz: float = 4.0,
                     max_steps: int | None = None, cameras: tuple[str, ...] = ("ext1",),
                     progress: bool = True):
    """Collect `episodes` scripted episodes of `task` ("reach", "push", "pick_place" or their gymnasium ids).

    Without `out`: an iterator of `SimEpisode`. With `out`: writes `<out>/<task>_<index:05d>/` episodes
    through `droid_data.write_episode` and returns their paths; folders already present are kept (resume).
    """
    task = task_name(task)
    iterator = _generate(task, episodes, seed, policy, image_size, control_hz, max_steps, cameras,
                         skip=_existing(out, task, episodes) if out is not None else set(), progress=progress)
    if out is None:
        return (episode for _, episode in iterator)
    for index, episode in iterator:
        write_sim_episode(episode, Path(out) / episode_name(task, index))
    return [Path(out) / episode_name(task, i) for i in range(episodes)]


def episode_name(task: str, index: int) -> str:
    return f"{task}_{index:05d}"


def _existing(out, task: str, episodes: int) -> set[int]:
    return {i for i in range(episodes) if (Path(out) / episode_name(task, i) / "trajectory.h5").exists()}


def _generate(task, episodes, seed, policy_kind, image_size, control_hz, max_steps, cameras, skip=(),
              progress=True) -> Iterator:
    # Imported here so that `import envs.collect` does not create environments or touch the GL context.
    from envs import TASKS

    task = task_name(task)
    if policy_kind not in POLICY_KINDS:
        raise ValueError(f"policy: expected one of {POLICY_KINDS}, got {policy_kind!r}")
    if episodes < 1:
        raise ValueError(f"episodes: expected >= 1, got {episodes}")
    exterior = [c for c in cameras if c != "wrist"]
    if len(exterior) != 1 or len(set(cameras)) != len(cameras):
        raise ValueError(f"cameras: expected one exterior camera ('ext1' or 'ext2') plus optionally 'wrist', "
                         f"got {cameras}")
    config = EnvConfig(image_size=image_size, camera=exterior[0], wrist_camera="wrist" in cameras,
                       control_hz=control_hz, max_steps=max_steps)
    env = TASKS[task][1](config=config)
    policy = make_policy(task, policy_kind)
    try:
        for index in tqdm(range(episodes), desc=f"collect {task}", unit="ep", disable=not progress):
            if index not in skip:
                yield index, run_episode(env, policy, episode_seed(seed, index), cameras)
    finally:
        env.close()


def run_episode(env, policy, seed: int, cameras=("ext1",)) -> SimEpisode:
    """Reset `env` with `seed`, run `policy` for the env's step budget and record everything."""
    obs, info = env.reset(seed=seed)
    policy.reset(np.random.default_rng(seed))
    states, joints, actions, frames, poses = [], [], [], {c: [] for c in cameras}, {c: [] for c in cameras}
    ever_success = bool(info["is_success"])

    def record(obs):
        states.append(env.state())  # float64, the same numbers as obs["state"]
        joints.append(env.robot.joints(env.data))
        for camera in cameras:
            frames[camera].append(obs["wrist_rgb"] if camera == "wrist" else obs["rgb"])
            poses[camera].append(env.camera_pose(camera))

    record(obs)
    truncated = False
    while not truncated:
        obs, _, _, truncated, info = env.step(policy(obs, info))
        actions.append(info["applied_action"])
        record(obs)
        ever_success |= bool(info["is_success"])
    return SimEpisode(
        task=env.task_name, policy=policy.name, seed=seed, fps=float(env.config.control_hz),
        states=np.array(states), joints=np.array(joints), actions=np.array(actions),
        frames={c: np.stack(v) for c, v in frames.items()},
        camera_extrinsics={c: np.array(v) for c, v in poses.items()},
        success=bool(info["is_success"]), ever_success=ever_success,
        goal_state=env.goal_state.copy(), goal_rgb=env.goal_rgb.copy(),
    )


def write_sim_episode(episode: SimEpisode, out_dir: str | Path) -> Path:
    """Write one SimEpisode in the DROID raw layout (droid_data.write_episode); camera serials `sim_<name>`."""
    from droid_data import write_episode

    serial = {camera: f"sim_{camera}" for camera in episode.frames}
    path = write_episode(
        out_dir,
        episode.states[:, :6],
        episode.states[:, 6],
        {serial[c]: v for c, v in episode.frames.items()},
        joint_position=episode.joints,
        camera_extrinsics={serial[c]: v for c, v in episode.camera_extrinsics.items()},
        camera_roles={serial[c]: c for c in episode.frames},
        fps=episode.fps,
        metadata={
            "lab": "sim",
            "current_task": TASK_TEXT[episode.task],
            "success": episode.success,
            "sim_task": episode.task,
            "sim_policy": episode.policy,
            "sim_seed": episode.seed,
            "sim_ever_success": episode.ever_success,
            "sim_goal_state": episode.goal_state.tolist(),
        },
    )
    episode.path = Path(path)
    return Path(path)
