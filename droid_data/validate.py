"""Check DROID raw-format episodes and LeRobot datasets; report every problem by kind, file and reason.

Kinds: droid_data.episode.CORRUPTION_KINDS. Bad data never raises here: every problem is a Problem.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pathlib
from collections.abc import Iterable, Sequence

from tqdm import tqdm

from droid_data.cli import one_line
from droid_data.episode import (
    CORRUPTION_KINDS,
    Episode,
    EpisodeError,
    find_episodes,
    read_episode,
    read_metadata,
    read_trajectory_h5,
)
from droid_data.lerobot import LeRobotEpisode, is_lerobot_dataset, scan_lerobot_dataset
from droid_data.video import VIDEO_ERRORS, probe_video

__all__ = [
    "Problem",
    "check_cameras",
    "check_frames",
    "format_report",
    "validate_episode",
    "validate_episodes",
]


@dataclasses.dataclass(frozen=True)
class Problem:
    episode: str
    kind: str  # one of CORRUPTION_KINDS
    file: str
    reason: str

    def __str__(self) -> str:  # one line, whatever the reason's library message holds
        return f"{self.episode}: {self.kind}: {self.file}: {one_line(self.reason)}"

    @classmethod
    def from_error(cls, error: EpisodeError) -> Problem:
        return cls(error.episode, error.kind, error.file, error.reason)


def check_frames(episode: Episode, camera: str, decode_all: bool = False) -> Problem | None:
    """The problem with one camera's frames of an episode (an MP4, or images stored in a LeRobot parquet), or
    None. Raises KeyError for a camera the episode does not have."""
    if isinstance(episode, LeRobotEpisode) and episode.stores_images(camera):
        return _check_images(episode, camera, decode_all)
    return _check_video(episode, camera, decode_all)


def _check_images(episode: LeRobotEpisode, camera: str, decode_all: bool) -> Problem | None:
    """Decodes the first and last frame (every frame with `decode_all`); the rows are the state rows."""
    try:
        if decode_all:
            for _ in episode.iter_frames(camera):
                pass
        else:
            episode.load_frames(camera, [0, episode.num_frames - 1])
    except EpisodeError as error:
        return Problem.from_error(error)
    return None


def _check_video(episode: Episode, camera: str, decode_all: bool) -> Problem | None:
    """Checks the file exists, is complete (demuxed packets match the header), holds one frame per state row,
    and that the episode's first and last frames decode (every frame with `decode_all`)."""
    path = episode.video_path(camera)
    start, count = episode.video_frame_range(camera)

    def problem(kind: str, reason: str) -> Problem:
        return Problem(episode.name, kind, str(path), reason)

    if not path.is_file():
        return problem("missing_mp4", f"camera {camera!r}: file does not exist")
    try:
        header = probe_video(path, count_packets=False)
        info = probe_video(path)
    except VIDEO_ERRORS as error:
        return problem("truncated_mp4", f"truncated or unreadable ({type(error).__name__}: {error})")
    if header.num_frames > info.num_frames:
        return problem(
            "truncated_mp4",
            f"truncated: header says {header.num_frames} frames, data holds {info.num_frames}",
        )
    if count is None and info.num_frames != episode.num_frames:
        return problem(
            "length_mismatch",
            f"video has {info.num_frames} frames, trajectory.h5 has {episode.num_frames} state rows",
        )
    if count is not None and info.num_frames < start + count:
        return problem(
            "length_mismatch",
            f"video has {info.num_frames} frames, the episode needs frames {start}..{start + count - 1}",
        )
    try:
        if decode_all:
            decoded = sum(len(batch) for batch in episode.iter_frames(camera))
            if decoded != episode.num_frames:
                return problem(
                    "truncated_mp4", f"truncated: decoded {decoded} of {episode.num_frames} frames"
                )
        else:
            episode.load_frames(camera, [0, episode.num_frames - 1])
    except EpisodeError as error:
        return Problem.from_error(error)
    return None


def check_cameras(
    episode: Episode, cameras: Sequence[str] | None = None, decode_all: bool = False
) -> list[Problem]:
    """A problem for each requested camera (default: all of the episode's) that is unknown or bad."""
    problems = []
    for camera in cameras if cameras is not None else episode.cameras:
        try:
            episode.serial(camera)
        except KeyError as error:
            problems.append(
                Problem(episode.name, "missing_key", str(episode.metadata_path), str(error.args[0]))
            )
            continue
        found = check_frames(episode, camera, decode_all)
        if found is not None:
            problems.append(found)
    return problems


def validate_episode(
    path: str | os.PathLike, cameras: Sequence[str] | None = None, decode_all: bool = False
) -> list[Problem]:
    """All problems of one episode (empty list = good).

    Checks metadata, h5 (readable, required keys, shapes, finite states) and, for every camera (default: all
    cameras the metadata names), that the MP4 exists, is complete, has one frame per state row, and that its
    first and last frames decode (every frame with `decode_all`).
    """
    folder = pathlib.Path(path)
    folder = folder.parent if folder.is_file() else folder
    problems = []
    for read_part in (read_metadata, read_trajectory_h5):  # check both parts even if one is bad
        try:
            read_part(folder)
        except EpisodeError as error:
            problems.append(Problem.from_error(error))
    if problems:
        return problems
    episode = read_episode(folder)
    problems.extend(check_cameras(episode, cameras, decode_all))
    if not episode.cameras:
        problems.append(
            Problem(
                str(episode.path),
                "missing_mp4",
                str(episode.path / "recordings" / "MP4"),
                "no camera videos found",
            )
        )
    return problems


def validate_episodes(
    source: str | os.PathLike | Iterable[str | os.PathLike],
    cameras: Sequence[str] | None = None,
    decode_all: bool = False,
    progress: bool = True,
) -> tuple[int, list[Problem]]:
    """Validate every episode of a root folder / index file / list, or a LeRobot dataset folder
    -> (number of episodes, problems)."""
    if isinstance(source, (str, os.PathLike)) and is_lerobot_dataset(source):
        return _validate_lerobot(source, cameras, decode_all, progress)
    folders = find_episodes(source)
    problems: list[Problem] = []
    for folder in tqdm(folders, desc="validate", unit="episode", disable=not progress):
        problems.extend(validate_episode(folder, cameras, decode_all))
    return len(folders), problems


def _validate_lerobot(root, cameras, decode_all: bool, progress: bool) -> tuple[int, list[Problem]]:
    """Every problem of a LeRobot dataset -> (entries checked, problems). The entries are its episodes, plus
    the dataset itself when its metadata has a problem of its own (e.g. unreadable meta/info.json)."""
    episodes, errors = scan_lerobot_dataset(root)
    problems = [Problem.from_error(error) for error in errors]
    for episode in tqdm(episodes, desc="validate", unit="episode", disable=not progress):
        problems.extend(check_cameras(episode, cameras, decode_all))
    checked = {episode.name for episode in episodes} | {problem.episode for problem in problems}
    return len(checked), problems


def format_report(num_episodes: int, problems: list[Problem]) -> str:
    """Human-readable report: one line per problem, then counts by kind."""
    lines = [f"BAD {problem}" for problem in problems]
    bad_episodes = len({problem.episode for problem in problems})
    lines.append(f"{num_episodes} episodes checked, {num_episodes - bad_episodes} good, {bad_episodes} bad")
    counts = collections.Counter(problem.kind for problem in problems)
    for kind in CORRUPTION_KINDS:
        if counts[kind]:
            lines.append(f"  {kind}: {counts[kind]}  ({CORRUPTION_KINDS[kind]})")
    return "\n".join(lines)
