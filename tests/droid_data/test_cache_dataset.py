"""zarr clip cache conversion and the clip datasets over it and over raw episodes."""

import logging

import numpy as np
import pytest
import torch
import zarr

from droid_data import CachedClipDataset, ClipSpec, EpisodeError, RawClipDataset, convert, pose_diffs
from droid_data.__main__ import main
from droid_data.dataset import IMAGENET_MEAN, IMAGENET_STD
from droid_data.synthetic import frame_index_of

SPEC = ClipSpec(frames_per_clip=4, fps=5.0)  # 15 fps video -> stride 3, span 10
CAMERAS = ("11111111", "22222222")


@pytest.fixture
def episodes(tmp_path, write_tiny_episode):
    written = [write_tiny_episode(f"raw/ep{i}", length=12 + 3 * i, seed=i, cameras=CAMERAS) for i in range(3)]
    return tmp_path / "raw", written


def test_convert_layout_and_contents(tmp_path, episodes):
    root, written = episodes
    report = convert(root, tmp_path / "cache", size=16, cameras=["ext1", "ext2"], progress=False)
    assert report.episodes == 3 and report.frames == 12 + 15 + 18 and report.skipped == []
    store = zarr.open_group(str(tmp_path / "cache"), mode="r")
    assert store.metadata.zarr_format == 3
    np.testing.assert_array_equal(store["episode_starts"][:], [0, 12, 27])
    np.testing.assert_array_equal(store["episode_lengths"][:], [12, 15, 18])
    frames = store["frames/ext1"]
    assert frames.shape == (45, 16, 16, 3) and frames.dtype == np.uint8
    assert frames.chunks == (8, 16, 16, 3) and frames.shards[0] % 8 == 0
    for number, (path, states) in enumerate(written):
        start, length = [0, 12, 27][number], len(states)
        np.testing.assert_array_equal(store["states"][start : start + length], states)
        np.testing.assert_allclose(store["actions"][start : start + length - 1], pose_diffs(states))
        np.testing.assert_array_equal(store["actions"][start + length - 1], 0)
        decoded = [frame_index_of(f, length, camera=1) for f in store["frames/ext2"][start : start + length]]
        assert decoded == list(range(length))
    assert store.attrs["episodes"] == [str(p) for p, _ in written]
    assert not (tmp_path / "cache.partial").exists()
    with pytest.raises(FileExistsError, match="overwrite"):
        convert(root, tmp_path / "cache", size=16, cameras=["ext1"], progress=False)


def test_cached_dataset_items_match_the_raw_episode(tmp_path, episodes):
    root, written = episodes
    convert(root, tmp_path / "cache", size=32, cameras=["ext1"], progress=False, workers=1)
    dataset = CachedClipDataset(tmp_path / "cache", SPEC, seed=7)
    assert len(dataset) == 3
    for index in range(3):
        item = dataset[index]
        states = written[index][1]
        indices = item["indices"].numpy()
        assert np.all(np.diff(indices) == 3) and indices[-1] < len(states)
        assert item["frames"].shape == (4, 32, 32, 3) and item["frames"].dtype == torch.uint8
        assert [frame_index_of(f, len(states)) for f in item["frames"].numpy()] == indices.tolist()
        np.testing.assert_allclose(item["states"].numpy(), states[indices], atol=1e-6)
        np.testing.assert_allclose(item["actions"].numpy(), pose_diffs(states[indices]), atol=1e-6)
        assert item["states"].dtype == torch.float32 and int(item["episode"]) == index
    # an int seed makes items a function of (seed, epoch, index)
    again = CachedClipDataset(tmp_path / "cache", SPEC, seed=7)
    assert torch.equal(again[1]["indices"], dataset[1]["indices"])
    epochs = set()
    for epoch in range(20):
        dataset.set_epoch(epoch)
        epochs.add(tuple(dataset[2]["indices"].tolist()))
    assert len(epochs) > 1


def test_float_output_is_normalised_channels_first(tmp_path, episodes):
    root, _ = episodes
    convert(root, tmp_path / "cache", size=16, cameras=["ext1"], progress=False)
    uint8 = CachedClipDataset(tmp_path / "cache", SPEC, seed=1)[0]["frames"]
    normalised = CachedClipDataset(tmp_path / "cache", SPEC, seed=1, output="float")[0]["frames"]
    assert normalised.shape == (3, 4, 16, 16) and normalised.dtype == torch.float32
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
    torch.testing.assert_close(normalised * std + mean, uint8.permute(3, 0, 1, 2).float() / 255)


def test_dataloader_workers_and_distributed_sampler(tmp_path, episodes):
    root, _ = episodes
    convert(root, tmp_path / "cache", size=16, cameras=["ext1"], progress=False)
    dataset = CachedClipDataset(tmp_path / "cache", SPEC, seed=3)
    seen = []
    for rank in range(2):
        sampler = torch.utils.data.DistributedSampler(
            dataset, num_replicas=2, rank=rank, shuffle=True, seed=0
        )
        sampler.set_epoch(0)
        loader = torch.utils.data.DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=1)
        for batch in loader:
            assert batch["frames"].shape[1:] == (4, 16, 16, 3)
            assert batch["actions"].shape[1:] == (3, 7)
            seen.extend(batch["episode"].tolist())
    assert sorted(set(seen)) == [0, 1, 2]  # the two ranks together cover the dataset


def test_short_episodes_are_counted_and_left_out(tmp_path, write_tiny_episode, caplog):
    write_tiny_episode("raw/short", length=5, cameras=("1",))
    write_tiny_episode("raw/long", length=12, cameras=("1",))
    convert(tmp_path / "raw", tmp_path / "cache", size=16, cameras=["ext1"], progress=False)
    with caplog.at_level(logging.WARNING):
        dataset = CachedClipDataset(tmp_path / "cache", SPEC)
    assert len(dataset) == 1 and dataset.too_short == 1 and "shorter than one clip" in caplog.text


def test_bad_episodes_stop_conversion_unless_skipped(tmp_path, write_tiny_episode, caplog):
    write_tiny_episode("raw/good", length=12, cameras=("1",))
    bad, _ = write_tiny_episode("raw/bad", length=12, cameras=("1",))
    (bad / "recordings/MP4/1.mp4").unlink()
    with pytest.raises(EpisodeError, match="missing_mp4.*1.mp4"):
        convert(tmp_path / "raw", tmp_path / "cache", size=16, cameras=["ext1"], progress=False)
    assert not (tmp_path / "cache").exists()
    with caplog.at_level(logging.WARNING):
        report = convert(
            tmp_path / "raw", tmp_path / "cache", size=16, cameras=["ext1"], skip_bad=True, progress=False
        )
    assert report.episodes == 1 and [p.kind for p in report.skipped] == ["missing_mp4"]
    assert "skipping bad episode" in caplog.text and str(bad) in caplog.text
    store = zarr.open_group(str(tmp_path / "cache"), mode="r")
    assert store.attrs["skipped"][0]["kind"] == "missing_mp4"


def test_cli_convert(tmp_path, episodes, capsys):
    root, _ = episodes
    assert (
        main(["convert", str(root), str(tmp_path / "c"), "--size", "8", "12", "--cameras", "ext1", "--quiet"])
        == 0
    )
    assert "3 episodes" in capsys.readouterr().out
    assert zarr.open_group(str(tmp_path / "c"), mode="r")["frames/ext1"].shape[1:] == (8, 12, 3)
    assert main(["convert", str(root), str(tmp_path / "c"), "--quiet"]) == 2  # exists, no --overwrite: usage


def test_raw_dataset_matches_cached_dataset(tmp_path, episodes):
    root, _written = episodes
    convert(root, tmp_path / "cache", size=16, cameras=["ext1"], progress=False)
    raw = RawClipDataset(root, SPEC, cameras=["ext1"], size=16, seed=5, progress=False)
    cached = CachedClipDataset(tmp_path / "cache", SPEC, seed=5)
    assert raw.episodes == cached.episodes
    for index in range(3):
        a, b = raw[index], cached[index]
        assert torch.equal(a["indices"], b["indices"])
        torch.testing.assert_close(a["states"], b["states"])
        torch.testing.assert_close(a["actions"], b["actions"])
        assert (a["frames"].int() - b["frames"].int()).abs().max() <= 1  # same decode + resize


def test_raw_dataset_skips_bad_episodes_only_when_asked(tmp_path, write_tiny_episode, caplog):
    write_tiny_episode("raw/good", length=12, cameras=("1",))
    bad, _ = write_tiny_episode("raw/bad", length=12, cameras=("1",))
    video = bad / "recordings/MP4/1.mp4"
    video.write_bytes(video.read_bytes()[:200])  # decodes fail only when an item is loaded
    dataset = RawClipDataset(tmp_path / "raw", SPEC, cameras=["ext1"], size=16, seed=0, progress=False)
    with pytest.raises(EpisodeError, match="truncated_mp4"):
        dataset[0]  # "bad" sorts first
    tolerant = RawClipDataset(
        tmp_path / "raw", SPEC, cameras=["ext1"], size=16, seed=0, skip_bad=True, progress=False
    )
    with caplog.at_level(logging.WARNING):
        item = tolerant[0]
    assert int(item["episode"]) == 1 and len(tolerant.skipped) == 1
    assert "skipping bad episode" in caplog.text


def test_camera_frame_items_use_the_cameras_extrinsics(tmp_path, write_tiny_episode):
    from droid_data import to_camera_frame

    pose = np.array([0.5, -0.3, 0.4, 0.1, -0.2, 2.0])
    _, states = write_tiny_episode("raw/ep", length=12, cameras=("1",), camera_extrinsics={"1": pose})
    convert(tmp_path / "raw", tmp_path / "cache", size=16, cameras=["ext1"], progress=False)
    item = CachedClipDataset(tmp_path / "cache", SPEC, seed=0, camera_frame=True, dtype=torch.float64)[0]
    expected = to_camera_frame(states[item["indices"].numpy()], pose)
    np.testing.assert_allclose(item["states"].numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(item["actions"].numpy(), pose_diffs(expected), atol=1e-12)
    np.testing.assert_allclose(item["extrinsics"].numpy(), np.tile(pose, (4, 1)))
