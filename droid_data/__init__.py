"""droid_data: DROID raw-format episodes (read, write, validate), the V-JEPA 2-AC state/action conventions,
a zarr clip cache and torch datasets of clips. See docs/droid_data.md."""
from droid_data.conventions import (
    euler_xyz_to_matrix,
    integrate_actions,
    matrix_to_euler_xyz,
    pose_diffs,
    to_camera_frame,
)
from droid_data.episode import CORRUPTION_KINDS, Episode, EpisodeError, find_episodes, read_episode
from droid_data.writer import write_episode

__all__ = [
    "CORRUPTION_KINDS",
    "Episode",
    "EpisodeError",
    "euler_xyz_to_matrix",
    "find_episodes",
    "integrate_actions",
    "matrix_to_euler_xyz",
    "pose_diffs",
    "read_episode",
    "to_camera_frame",
    "write_episode",
]
