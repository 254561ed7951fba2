"""droid_data: DROID raw-format episodes (read, write, validate), the V-JEPA 2-AC state/action conventions,
a zarr clip cache and torch datasets of clips, and a LeRobot v2/v3 reader. See docs/droid_data.md."""

from droid_data.cache import convert
from droid_data.clips import ClipSpec, sample_clip_indices
from droid_data.conventions import (
    euler_xyz_to_matrix,
    integrate_actions,
    matrix_to_euler_xyz,
    pose_diffs,
    to_camera_frame,
)
from droid_data.dataset import CachedClipDataset, RawClipDataset
from droid_data.episode import CORRUPTION_KINDS, Episode, EpisodeError, find_episodes, read_episode
from droid_data.lerobot import read_lerobot_dataset
from droid_data.validate import validate_episode, validate_episodes
from droid_data.writer import write_episode

__all__ = [
    "CORRUPTION_KINDS",
    "CachedClipDataset",
    "ClipSpec",
    "Episode",
    "EpisodeError",
    "RawClipDataset",
    "convert",
    "euler_xyz_to_matrix",
    "find_episodes",
    "integrate_actions",
    "matrix_to_euler_xyz",
    "pose_diffs",
    "read_episode",
    "read_lerobot_dataset",
    "sample_clip_indices",
    "to_camera_frame",
    "validate_episode",
    "validate_episodes",
    "write_episode",
]
