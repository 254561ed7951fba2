"""Workspace exploration data: targets cover the whole safety box, episodes are valid DROID-layout episodes."""
import numpy as np

from droid_data import read_episode
from envs.collect import collect_exploration
from envs.controller import ControllerConfig
from envs.exploration import WorkspaceExplorer


def test_targets_cover_the_workspace_box():
    explorer = WorkspaceExplorer()
    explorer.reset(np.random.default_rng(0))
    targets = []
    for _ in range(300):
        explorer({"state": np.r_[explorer.target, np.zeros(4)]}, {})  # "arrived": a new target is drawn
        targets.append(explorer.target)
    targets = np.array(targets)
    box = ControllerConfig()
    assert np.all(targets >= np.asarray(box.workspace_low)) and np.all(targets <= np.asarray(box.workspace_high))
    span = targets.max(0) - targets.min(0)
    assert np.all(span > 0.8 * (np.asarray(box.workspace_high) - np.asarray(box.workspace_low)))


def test_collect_exploration_writes_readable_episodes(tmp_path):
    paths = collect_exploration(tmp_path, episodes=2, seed=3, image_size=32, max_steps=6, progress=False)
    assert [p.name for p in paths] == ["explore_00000", "explore_00001"]
    episodes = [read_episode(p) for p in paths]
    assert all(ep.num_frames == 7 for ep in episodes)
    moved = [np.linalg.norm(ep.states[-1, :3] - ep.states[0, :3]) for ep in episodes]
    assert max(moved) > 0.03  # the arm actually explores
    again = collect_exploration(tmp_path, episodes=2, seed=3, image_size=32, max_steps=6, progress=False)
    assert again == paths  # complete folders are kept (resume)
