"""Scripted data collection in DROID's raw layout (what V-JEPA 2-AC trains on), or in memory.

One episode = reset, then `max_steps` control steps of a scripted policy (envs/policies.py), recording the
observation after the reset and after every step: frame i of every camera goes with state row i, and the
recording rate is the env's control rate (stored as the episode's fps).

    collect_episodes("push", 50, seed=0)                   # -> iterator of SimEpisode (nothing on disk)
    collect_episodes("push", 50, seed=0, out="data/push")  # -> list of episode folders (droid_data layout)
    collect_mix("reach:200,grasp:100,pick_place/oracle:50,explore_object:100", "data/sim", seed=0)

Scene variation per episode (drawn from the episode's seed, so reproducible): `objects` picks the object
shape, `random_colors` its colour, `camera_jitter` moves the exterior camera by up to that many metres per axis.
"""
from __future__ import annotations

import colorsys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from envs.franka_env import EnvConfig
from envs.policies import MIXES, POLICY_KINDS, make_policy

TASK_TEXT = {  # DROID's `current_task` instruction; {object} is "cube" or "cup"
    "reach": "move the gripper to the goal position",
    "push": "push the {object} to the goal spot",
    "grasp": "grasp the {object} and lift it",
    "reach_with_object": "move the {object} in the gripper to the goal position",
    "pick_place": "pick up the {object} and place it at the goal spot",
}


@dataclass
class SimEpisode:
    task: str
    policy: str  # which scripted policy drove it (oracle, noisy_<task>_expert, random, ...)
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
    object: str | None = None  # "cube" / "cup"; None for reach
    scene_options: dict = field(default_factory=dict)  # the episode's object colour and camera offsets
    subgoal_states: list[np.ndarray] = field(default_factory=list)  # [7] each (pick-and-place)
    path: Path | None = field(default=None)
    # [T, 3] the object's centre per frame (simulator pose: for evaluation only, never written to disk); None
    # for reach
    object_positions: np.ndarray | None = None


@dataclass
class SceneVariation:
    """Which scene variations collection draws per episode (defaults: none, the cube)."""

    objects: tuple[str, ...] = ("cube",)
    random_colors: bool = False
    camera_jitter: float = 0.0  # metres per axis

    def __post_init__(self):
        from envs.scene import OBJECTS

        unknown = [shape for shape in self.objects if shape not in OBJECTS]
        if not self.objects or unknown:
            raise ValueError(f"objects: expected one or more of {sorted(OBJECTS)}, got {list(self.objects)}")
        if not self.camera_jitter >= 0:
            raise ValueError(f"camera_jitter: expected metres >= 0, got {self.camera_jitter}")

    def sample(self, seed: int) -> tuple[str, dict]:
        """(object shape, reset options) for the episode with env seed `seed`; an independent stream, so the
        episode's start and goal do not depend on the variations asked for."""
        rng = np.random.default_rng([seed, 7])
        shape = self.objects[int(rng.integers(len(self.objects)))]
        options = {}
        if self.random_colors:  # any hue, saturated and bright enough to stand out from the grey table
            options["object_rgba"] = (*colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.5, 1.0),
                                                           rng.uniform(0.45, 1.0)), 1.0)
        if self.camera_jitter > 0:
            options["camera_offset"] = tuple(rng.uniform(-self.camera_jitter, self.camera_jitter, 3))
        return shape, options


def episode_seed(seed: int, index: int) -> int:
    """Per-episode seed: episodes are independent and reproducible one by one."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def task_name(task: str) -> str:
    """Short task name ("reach", "push", "grasp", ...) from itself or its gymnasium id ("FrankaPush-v0")."""
    from envs import TASKS

    for name, (env_id, _) in TASKS.items():
        if task in (name, env_id):
            return name
    choices = sorted(TASKS) + sorted(env_id for env_id, _ in TASKS.values())
    raise ValueError(f"task: expected one of {choices}, got {task!r}")


def collect_episodes(task: str, episodes: int, seed: int = 0, *, out: str | Path | None = None,
                     policy: str = "mixed", image_size: int = 64, control_hz: float = 4.0,
                     max_steps: int | None = None, cameras: tuple[str, ...] = ("ext1",),
                     variation: SceneVariation | None = None, progress: bool = True):
    """Collect `episodes` scripted episodes of `task` (a name of `envs.TASKS` or its gymnasium id).

    Without `out`: an iterator of `SimEpisode`. With `out`: writes `<out>/<task>_<index:05d>/` episodes
    through `droid_data.write_episode` and returns their paths; folders already present are kept (resume).
    """
    task = task_name(task)
    seeds = [episode_seed(seed, i) for i in range(episodes)]
    names = [episode_name(task, i) for i in range(episodes)]
    iterator = _generate(task, seeds, policy, env_config(image_size, control_hz, max_steps, cameras), cameras,
                         variation or SceneVariation(), skip=_existing(out, names), progress=progress)
    if out is None:
        return (episode for _, episode in iterator)
    for index, episode in iterator:
        write_sim_episode(episode, Path(out) / names[index])
    return [Path(out) / name for name in names]


def episode_name(task: str, index: int) -> str:
    return f"{task}_{index:05d}"


def _existing(out, names: list[str]) -> set[int]:
    if out is None:
        return set()
    return {i for i, name in enumerate(names) if (Path(out) / name / "trajectory.h5").exists()}


def env_config(image_size, control_hz, max_steps, cameras) -> EnvConfig:
    """The environment settings of a collection (``ValueError`` naming the setting if one is bad)."""
    exterior = [c for c in cameras if c != "wrist"]
    if len(exterior) != 1 or len(set(cameras)) != len(cameras):
        raise ValueError(f"cameras: expected one exterior camera ('ext1' or 'ext2') plus optionally 'wrist', "
                         f"got {cameras}")
    return EnvConfig(image_size=image_size, camera=exterior[0], wrist_camera="wrist" in cameras,
                     control_hz=control_hz, max_steps=max_steps)


def _generate(task, seeds, policy_kind, config, cameras, variation, skip=(), progress=True,
              bar=None) -> Iterator:
    """(index, SimEpisode) for every seed not in `skip`; one env per object shape, made when first needed."""
    # Imported here so that `import envs.collect` does not create environments or touch the GL context.
    from envs import TASKS

    if policy_kind not in POLICY_KINDS:
        raise ValueError(f"policy: expected one of {POLICY_KINDS}, got {policy_kind!r}")
    if len(seeds) < 1:
        raise ValueError(f"episodes: expected >= 1, got {len(seeds)}")
    policy = make_policy(task, policy_kind)
    made = {}
    own_bar = bar is None
    bar = bar or tqdm(total=len(seeds), desc=f"collect {task}", unit="ep", disable=not progress)
    try:
        for index, seed in enumerate(seeds):
            if index in skip:
                bar.update(1)
                continue
            shape, options = variation.sample(seed)
            shape = shape if TASKS[task][1].uses_object else config.object  # reach: no object, one env
            if shape not in made:
                made[shape] = TASKS[task][1](config=EnvConfig(**{**vars(config), "object": shape}))
            yield index, run_episode(made[shape], policy, seed, cameras, options)
            bar.update(1)
    finally:
        for env in made.values():
            env.close()
        if own_bar:
            bar.close()


def run_episode(env, policy, seed: int, cameras=("ext1",), options: dict | None = None) -> SimEpisode:
    """Reset `env` with `seed` (and reset `options`), run `policy` for the env's step budget, record it all."""
    obs, info = env.reset(seed=seed, options=options)
    policy.reset(np.random.default_rng(seed))
    states, joints, actions, frames, poses = [], [], [], {c: [] for c in cameras}, {c: [] for c in cameras}
    object_positions = []
    ever_success = bool(info["is_success"])

    def record(obs):
        states.append(env.state())  # float64, the same numbers as obs["state"]
        if env.uses_object:
            object_positions.append(env.object_pos().copy())
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
        object=env.config.object if env.uses_object else None, scene_options=dict(env.scene_options),
        subgoal_states=[s.copy() for s in env.subgoal_states],
        object_positions=np.array(object_positions) if env.uses_object else None,
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
            "current_task": TASK_TEXT[episode.task].format(object=episode.object),
            "success": episode.success,
            "sim_task": episode.task,
            "sim_policy": episode.policy,
            "sim_seed": episode.seed,
            "sim_ever_success": episode.ever_success,
            "sim_goal_state": episode.goal_state.tolist(),
            "sim_object": episode.object,
            "sim_scene_options": episode.scene_options,
            "sim_subgoal_states": [s.tolist() for s in episode.subgoal_states],
        },
    )
    episode.path = Path(path)
    return Path(path)


# --- mixes ---------------------------------------------------------------------------------------------------
EXTRA_COMPONENTS = {
    "explore_object": ("grasp", "explore_object"),  # wander around the object from grasp starts
    "explore": ("reach", "workspace"),  # envs.exploration.WorkspaceExplorer over the whole safety box
}


def parse_component(component: str) -> tuple[str, str]:
    """A mix component -> (task, policy kind): "grasp" (its mixed policy), "grasp/oracle", "explore_object"
    (grasp starts, object exploration) or "explore" (workspace exploration, reach starts)."""
    if component in EXTRA_COMPONENTS:
        return EXTRA_COMPONENTS[component]
    task, _, kind = component.partition("/")
    if task not in MIXES:
        raise ValueError(f"mix component {component!r}: expected a task {sorted(MIXES)} (optionally /<policy>, "
                         f"policy one of {POLICY_KINDS}) or one of {sorted(EXTRA_COMPONENTS)}")
    kind = kind or "mixed"
    if kind not in POLICY_KINDS:
        raise ValueError(f"mix component {component!r}: expected a policy among {POLICY_KINDS}, got {kind!r}")
    make_policy(task, kind)  # refuses combinations that make no sense (e.g. reach/failed_grasp)
    return task, kind


def parse_mix(mix: str | dict | Path) -> dict[str, int]:
    """"reach:200,grasp/oracle:50" or a YAML file of `component: count` (or such a dict) -> {component: count},
    each component checked."""
    if isinstance(mix, dict):
        parsed = dict(mix)
    elif Path(str(mix)).suffix in (".yaml", ".yml"):
        from droid_data.cli import read_yaml_file

        parsed = read_yaml_file(mix, "a YAML map of mix component to episode count")
        if not isinstance(parsed, dict):
            raise ValueError(f"{mix}: expected a mapping of mix component to episode count, got "  # noqa: TRY004
                             f"{type(parsed).__name__}")
    else:
        parsed = {}
        for item in str(mix).split(","):
            component, sep, count = item.strip().rpartition(":")
            if not sep or not count.strip().isdigit():
                raise ValueError(f"mix: expected COMPONENT:COUNT items separated by commas, got {item.strip()!r}")
            parsed[component.strip()] = int(count)
    for component, count in parsed.items():
        parse_component(component)
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"mix component {component!r}: expected a positive episode count, got {count!r}")
    return parsed


def mix_episode_seed(seed: int, component: str, index: int) -> int:
    """Per-episode seed of a mix: independent across components (the name is hashed in) and episodes."""
    return int(np.random.SeedSequence([seed, zlib.crc32(component.encode()), index]).generate_state(1)[0])


def collect_mix(mix, out: str | Path, seed: int = 0, *, image_size: int = 64, control_hz: float = 4.0,
                max_steps: int | None = None, cameras: tuple[str, ...] = ("ext1",),
                variation: SceneVariation | None = None, progress: bool = True) -> list[Path]:
    """Collect a mix of components (see `parse_mix`) into `<out>/<component>/<task>_<index:05d>/` (a "/" in a
    component name becomes "-"), one progress bar for all; complete episodes already there are kept."""
    mix, out = parse_mix(mix), Path(out)
    config = env_config(image_size, control_hz, max_steps, cameras)
    variation = variation or SceneVariation()
    paths = []
    bar = tqdm(total=sum(mix.values()), desc="collect", unit="ep", disable=not progress)
    try:
        for component, count in mix.items():
            task, kind = parse_component(component)
            folder = out / component.replace("/", "-")
            seeds = [mix_episode_seed(seed, component, i) for i in range(count)]
            names = [episode_name(task, i) for i in range(count)]
            bar.set_description(f"collect {component}")
            if kind == "workspace":
                episodes = _workspace_exploration(seeds, config, cameras, _existing(folder, names), bar)
            else:
                episodes = _generate(task, seeds, kind, config, cameras, variation,
                                     skip=_existing(folder, names), bar=bar)
            for index, episode in episodes:
                write_sim_episode(episode, folder / names[index])
            paths += [folder / name for name in names]
    finally:
        bar.close()
    return paths


def _workspace_exploration(seeds, config, cameras, skip, bar) -> Iterator:
    from envs.exploration import WorkspaceExplorer
    from envs.tasks import FrankaReachEnv

    env, policy = FrankaReachEnv(config=config), WorkspaceExplorer()
    try:
        for index, seed in enumerate(seeds):
            if index not in skip:
                yield index, run_episode(env, policy, seed, cameras)
            bar.update(1)
    finally:
        env.close()


def collect_exploration(out: str | Path, episodes: int, seed: int = 0, image_size: int = 64,
                        control_hz: float = 4.0, max_steps: int | None = None, progress: bool = True) -> list[Path]:
    """`episodes` WorkspaceExplorer episodes from FrankaReach-v0 starts, written to ``<out>/explore_<index>``
    (DROID raw layout; folders already complete are kept)."""
    from envs.exploration import WorkspaceExplorer
    from envs.tasks import FrankaReachEnv

    out = Path(out)
    paths = [out / f"explore_{i:05d}" for i in range(episodes)]
    todo = [i for i, p in enumerate(paths) if not (p / "trajectory.h5").exists()]
    if not todo:
        return paths
    env = FrankaReachEnv(config=EnvConfig(image_size=image_size, control_hz=control_hz, max_steps=max_steps))
    policy = WorkspaceExplorer()
    try:
        for i in tqdm(todo, desc="collect exploration", unit="ep", disable=not progress):
            write_sim_episode(run_episode(env, policy, episode_seed(seed, 1_000_000 + i)), paths[i])
    finally:
        env.close()
    return paths
