"""Convert episodes to a zarr v3 clip cache: frames at the training resolution, states, actions, boundaries.

Store layout (``zarr.json`` attributes carry ``format``, the resolution, cameras, episode names, skipped
episodes and the conventions)::

    frames/<camera>     uint8   [N, H, W, 3]  all episodes' frames back to back, RGB
    states              float64 [N, 7]        [xyz, Euler 'xyz', gripper] per frame
    actions             float64 [N, 7]        pose_diffs(states) within each episode: row i moves frame i to i+1;
                                              the last row of every episode is 0 (it has no next state)
    joint_positions     float64 [N, 7]        NaN where the episode has none
    extrinsics/<camera> float64 [N, 6]        camera pose per frame, NaN where unknown
    episode_starts      int64   [E]           first row of each episode
    episode_lengths     int64   [E]
    episode_fps         float64 [E]           the source video rate (clip stride = ceil(fps / target fps))

Chunking: a clip is read as one contiguous slice (first to last clip frame, 29 frames for the released 8 frames
at 4 fps) and subsampled in memory, so frames are chunked ``chunk_frames`` (default 8) at a time: few enough
chunk requests per clip (zarr's per-chunk overhead dominates at small resolutions) and little decompressed
beyond the slice. Chunks are grouped into shards of ``shard_frames`` (default 256), so a large dataset is
thousands of files, not millions. Measured with benchmarks/clip_loading.py. Other arrays are row-chunked.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime
import logging
import os
import pathlib
import shutil
from collections.abc import Sequence

import numpy as np
import zarr
from tqdm import tqdm

from droid_data.conventions import pose_diffs
from droid_data.episode import Episode, EpisodeError
from droid_data.sources import EpisodeRef, list_episodes, load_episode
from droid_data.validate import Problem, check_cameras
from droid_data.video import center_crop_resize

__all__ = ["CACHE_FORMAT", "ConvertReport", "convert", "is_cache"]

CACHE_FORMAT = "droid_data.clip_cache.v1"
log = logging.getLogger(__name__)


def is_cache(path: str | os.PathLike) -> bool:
    path = pathlib.Path(path)
    if not (path / "zarr.json").is_file():
        return False
    return zarr.open_group(str(path), mode="r").attrs.get("format") == CACHE_FORMAT


@dataclasses.dataclass
class ConvertReport:
    out: pathlib.Path
    episodes: int  # converted
    frames: int
    skipped: list[Problem]


def _check_episode(ref: EpisodeRef, cameras: Sequence[str]) -> tuple[Episode | None, list[Problem]]:
    """Read an episode and check the videos it must provide, without decoding more than two frames each."""
    try:
        episode = load_episode(ref)
    except EpisodeError as error:
        return None, [Problem.from_error(error)]
    problems = check_cameras(episode, cameras)
    return (None if problems else episode), problems


def _resized_frames(job) -> tuple[dict[str, np.ndarray] | None, Problem | None]:
    """Worker: decode every frame of the cameras of one episode and resize them. Runs in a subprocess."""
    episode, cameras, size, crop_aspect, batch_size = job
    import torch

    torch.set_num_threads(1)
    out = {}
    for camera in cameras:
        try:
            batches = [
                center_crop_resize(b, size, crop_aspect) for b in episode.iter_frames(camera, batch_size)
            ]
        except EpisodeError as error:
            return None, Problem.from_error(error)
        frames = np.concatenate(batches) if batches else np.zeros((0, *size, 3), np.uint8)
        if len(frames) != episode.num_frames:
            return None, Problem(
                episode.name,
                "length_mismatch",
                str(episode.frames_path(camera)),
                f"decoded {len(frames)} frames, expected {episode.num_frames} (one per state row)",
            )
        out[camera] = frames
    return out, None


class _ShardWriter:
    """Writes rows to a sharded zarr array in whole-shard blocks (partial shard writes would re-encode)."""

    def __init__(self, array, shard_rows: int):
        self.array, self.shard_rows = array, shard_rows
        self.buffer: list[np.ndarray] = []
        self.buffered = 0
        self.written = 0

    def append(self, rows: np.ndarray):
        self.buffer.append(rows)
        self.buffered += len(rows)
        if self.buffered >= self.shard_rows:
            block = np.concatenate(self.buffer)
            whole = (len(block) // self.shard_rows) * self.shard_rows
            self.array[self.written : self.written + whole] = block[:whole]
            self.written += whole
            self.buffer, self.buffered = [block[whole:]], len(block) - whole

    def close(self):
        if self.buffered:
            block = np.concatenate(self.buffer)
            self.array[self.written : self.written + len(block)] = block
            self.written += len(block)
            self.buffer, self.buffered = [], 0


def _parse_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = (int(v) for v in size)
    return height, width


def convert(
    source,
    out: str | os.PathLike,
    *,
    size: int | Sequence[int] = 256,
    crop_aspect: float = 1.0,
    cameras: Sequence[str] = ("left",),
    skip_bad: bool = False,
    workers: int = 0,
    chunk_frames: int = 8,
    shard_frames: int = 256,
    overwrite: bool = False,
    state_keys: Sequence[str] | None = None,
    progress: bool = True,
) -> ConvertReport:
    """Convert episodes (DROID root / index file / list of folders, or a LeRobot folder) into a clip cache.

    - ``size``: output resolution (int = square, or (height, width)); ``crop_aspect``: width/height of the center
      crop taken before resizing (1.0 square, 1.35 what the official AC training effectively uses).
    - ``cameras``: camera names (roles such as "left", "ext1", "wrist", serials, or LeRobot video keys).
    - ``skip_bad``: leave out bad episodes (each logged and listed in the store's ``skipped`` attribute and the
      returned report); otherwise the first bad episode raises EpisodeError naming its file and reason.
    - ``workers``: decoding processes (0 = in this process).

    Written to ``<out>.partial`` and renamed when complete.
    """
    out = pathlib.Path(out)
    height, width = _parse_size(size)
    cameras = list(cameras)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    refs = list_episodes(source, state_keys=state_keys)
    if not refs:
        raise FileNotFoundError(f"{source}: no episodes found")

    skipped: list[Problem] = []

    def reject(problems: list[Problem]):
        if not skip_bad:
            first = problems[0]
            raise EpisodeError(
                first.episode, first.kind, first.file, first.reason + " (use skip_bad / --skip-bad)"
            )
        for problem in problems:
            log.warning("skipping bad episode: %s", problem)
        skipped.extend(problems)

    episodes: list[Episode] = []
    for ref in tqdm(refs, desc="checking episodes", unit="episode", disable=not progress):
        episode, problems = _check_episode(ref, cameras)
        if problems:
            reject(problems)
        else:
            episodes.append(episode)

    if not episodes:
        raise ValueError(
            f"{source}: none of the {len(refs)} episodes is usable; {len(skipped)} problem(s) logged"
        )
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)  # left over from an interrupted conversion
    try:
        root = zarr.open_group(str(partial), mode="w", zarr_format=3)
        _write_vectors(root, episodes, cameras)
        bad = _write_frames(
            root,
            episodes,
            cameras,
            (height, width),
            crop_aspect,
            chunk_frames,
            shard_frames,
            workers,
            reject,
            progress,
        )
        keep = ~bad  # an episode whose video failed only while decoding keeps its rows but is not listed
        lengths = np.array([e.num_frames for e in episodes], dtype=np.int64)
        starts = np.cumsum(lengths) - lengths
        root.create_array("episode_starts", data=starts[keep])
        root.create_array("episode_lengths", data=lengths[keep])
        root.create_array("episode_fps", data=np.array([e.fps for e in episodes], dtype=np.float64)[keep])
        root.attrs.update(
            {
                "format": CACHE_FORMAT,
                "size": [height, width],
                "crop_aspect": crop_aspect,
                "cameras": cameras,
                "episodes": [e.name for e, k in zip(episodes, keep) if k],
                "skipped": [dataclasses.asdict(p) for p in skipped],
                "source": str(source) if isinstance(source, (str, os.PathLike)) else "list",
                "created": datetime.datetime.now().isoformat(timespec="seconds"),
                "conventions": "state = [x, y, z, rx, ry, rz, gripper], extrinsic Euler 'xyz'; "
                "action_t = [xyz_{t+1} - xyz_t, euler_xyz(R_{t+1} R_t^T), g_{t+1} - g_t]",
            }
        )
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    converted = int(keep.sum())
    if skipped:
        log.warning("%d bad episode(s) skipped, %d converted", len({p.episode for p in skipped}), converted)
    return ConvertReport(out, converted, int(lengths[keep].sum()), skipped)


def _write_vectors(root, episodes: list[Episode], cameras: list[str]) -> None:
    def vector_array(name: str, values: list[np.ndarray], dim: int):
        data = np.concatenate(values) if values else np.zeros((0, dim))
        rows = max(1, min(65536, len(data)))
        root.create_array(name, data=data.astype(np.float64), chunks=(rows, dim))

    vector_array("states", [e.states for e in episodes], 7)
    vector_array("actions", [np.concatenate([pose_diffs(e.states), np.zeros((1, 7))]) for e in episodes], 7)
    no_joints = [np.full((e.num_frames, 7), np.nan) for e in episodes]
    vector_array(
        "joint_positions",
        [e.joint_positions if e.joint_positions is not None else n for e, n in zip(episodes, no_joints)],
        7,
    )
    for camera in cameras:
        vector_array(f"extrinsics/{camera}", [_extrinsics_or_nan(e, camera) for e in episodes], 6)


def _ordered_results(pool, function, jobs, ahead: int):
    """Like pool.map, but at most `ahead` jobs in flight, so decoded episodes never pile up in memory."""
    if pool is None:
        yield from map(function, jobs)
        return
    pending = collections.deque()
    for job in jobs:
        pending.append(pool.submit(function, job))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _write_frames(
    root, episodes, cameras, size, crop_aspect, chunk_frames, shard_frames, workers, reject, progress
) -> np.ndarray:
    """Decode, resize and write every episode's frames in order; returns which episodes failed to decode."""
    height, width = size
    total = sum(e.num_frames for e in episodes)
    shard = max(chunk_frames, (shard_frames // chunk_frames) * chunk_frames)
    writers = {
        camera: _ShardWriter(
            root.create_array(
                f"frames/{camera}",
                shape=(total, height, width, 3),
                dtype="uint8",
                chunks=(chunk_frames, height, width, 3),
                shards=(shard, height, width, 3),
            ),
            shard,
        )
        for camera in cameras
    }
    jobs = [(e, cameras, size, crop_aspect, 32) for e in episodes]
    bad = np.zeros(len(episodes), dtype=bool)
    bar = tqdm(total=total, desc="converting frames", unit="frame", disable=not progress)
    pool = concurrent.futures.ProcessPoolExecutor(workers) if workers > 0 else None
    try:
        results = _ordered_results(pool, _resized_frames, jobs, ahead=2 * max(workers, 1))
        for number, (episode, (frames, problem)) in enumerate(zip(episodes, results)):
            if problem is not None:
                reject([problem])  # raises unless skip_bad
                bad[number] = True
                frames = {c: np.zeros((episode.num_frames, height, width, 3), np.uint8) for c in cameras}
            for camera in cameras:
                writers[camera].append(frames[camera])
            bar.update(episode.num_frames)
    finally:
        bar.close()
        if pool:
            pool.shutdown(cancel_futures=True)
    for writer in writers.values():
        writer.close()
    return bad


def _extrinsics_or_nan(episode: Episode, camera: str) -> np.ndarray:
    try:
        return episode.extrinsics(camera)
    except KeyError:
        return np.full((episode.num_frames, 6), np.nan)
