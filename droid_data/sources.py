"""One entry point for "a set of episodes": a DROID root folder, an index file, a list of folders, or a
LeRobotDataset v2/v3 folder. Converters and datasets use it, so every format gets the same treatment."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

from droid_data.episode import Episode, find_episodes, read_episode
from droid_data.lerobot import is_lerobot_dataset, read_lerobot_dataset

__all__ = ["EpisodeRef", "episode_name", "list_episodes", "load_episode"]

# A DROID episode folder (read on demand) or an already-indexed episode (LeRobot).
EpisodeRef = pathlib.Path | Episode


def list_episodes(
    source: str | os.PathLike | Sequence[str | os.PathLike], state_keys: Sequence[str] | None = None
) -> list[EpisodeRef]:
    """Episode references of `source`; `state_keys` selects LeRobot state features (see droid_data.lerobot)."""
    if isinstance(source, (str, os.PathLike)) and is_lerobot_dataset(source):
        return list(read_lerobot_dataset(source, state_keys=state_keys))
    return list(find_episodes(source))


def load_episode(ref: EpisodeRef) -> Episode:
    """The Episode of a reference (reads h5 + metadata for a DROID folder). Raises EpisodeError if bad."""
    return ref if isinstance(ref, Episode) else read_episode(ref)


def episode_name(ref: EpisodeRef) -> str:
    return str(ref.name) if isinstance(ref, Episode) else str(ref)
