"""One entry point for "a set of episodes": a DROID root folder, an index file, a list of folders, or a
LeRobotDataset v2/v3 folder. Converters and datasets use it, so every format gets the same treatment."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

from droid_data.episode import Episode, EpisodeError, find_episodes, read_episode
from droid_data.lerobot import is_lerobot_dataset, scan_lerobot_dataset

__all__ = ["EpisodeRef", "episode_name", "list_episodes", "load_episode"]

# A DROID episode folder (read on demand), an already-read episode (LeRobot), or the problem that kept a LeRobot
# episode from being read (raised by load_episode, so every consumer treats it like any other bad episode).
EpisodeRef = pathlib.Path | Episode | EpisodeError


def list_episodes(
    source: str | os.PathLike | Sequence[str | os.PathLike], state_keys: Sequence[str] | None = None
) -> list[EpisodeRef]:
    """Episode references of `source`; `state_keys` selects LeRobot state features (see droid_data.lerobot)."""
    if isinstance(source, (str, os.PathLike)) and is_lerobot_dataset(source):
        episodes, problems = scan_lerobot_dataset(source, state_keys=state_keys)
        return [*problems, *episodes]  # problems first: a strict consumer stops before decoding anything
    return list(find_episodes(source))


def load_episode(ref: EpisodeRef) -> Episode:
    """The Episode of a reference (reads h5 + metadata for a DROID folder). Raises EpisodeError if bad."""
    if isinstance(ref, EpisodeError):
        raise ref
    return ref if isinstance(ref, Episode) else read_episode(ref)


def episode_name(ref: EpisodeRef) -> str:
    if isinstance(ref, EpisodeError):
        return ref.episode
    return str(ref.name) if isinstance(ref, Episode) else str(ref)
