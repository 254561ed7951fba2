"""Pretraining data: transform, clip sampling, the three file sources and the resumable sampler."""
import itertools

import av
import numpy as np
import pytest
import torch

from droid_data import write_episode
from droid_data.video import encode_video
from vjepa_ac.runtime import IMAGENET_MEAN, IMAGENET_STD
from vjepa_ac.video_data import (
    DataConfig,
    StepSampler,
    VideoTransform,
    build_dataset,
    clip_indices,
)


def _frames(t=10, h=24, w=32):
    """Frame i is filled with value 20·i in red; the left third is bright green (a flip would move it)."""
    x = np.zeros((t, h, w, 3), np.uint8)
    x[..., 0] = (np.arange(t) * 20)[:, None, None]
    x[:, :, : w // 3, 1] = 255
    return x


def _unnormalize(clip):
    return clip * torch.tensor(IMAGENET_STD).view(3, 1, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)


def test_transform_shape_normalisation_and_no_flip_by_default():
    tf = VideoTransform(16, scale=(1.0, 1.0), ratio=(32 / 24, 32 / 24))
    out = tf(_frames(), torch.Generator().manual_seed(0))
    assert out.shape == (3, 10, 16, 16) and out.dtype == torch.float32
    rgb = _unnormalize(out)
    torch.testing.assert_close(rgb[0, :, 8, 8], torch.arange(10) * 20 / 255.0, atol=2e-3, rtol=0)
    assert rgb[1, :, :, :4].mean() > 0.9 and rgb[1, :, :, -4:].mean() < 0.1  # green stays on the left
    flipped = _unnormalize(VideoTransform(16, (1, 1), (32 / 24, 32 / 24), horizontal_flip=True)(
        _frames(), torch.Generator().manual_seed(1)))
    assert flipped[1, :, :, -4:].mean() > 0.9  # this seed flips
    with pytest.raises(ValueError, match=r"uint8 frames \[T, H, W, 3\]"):
        tf(np.zeros((2, 8, 8), np.uint8), torch.Generator())


def test_random_crop_is_shared_by_all_frames_and_seeded():
    tf = VideoTransform(8, scale=(0.3, 0.6))
    still = np.repeat(np.random.default_rng(0).integers(0, 255, (1, 40, 40, 3), dtype=np.uint8), 5, axis=0)
    a = tf(still, torch.Generator().manual_seed(3))
    assert all(torch.equal(a[:, 0], a[:, t]) for t in range(5))
    assert torch.equal(a, tf(still, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, tf(still, torch.Generator().manual_seed(4)))


def test_clip_indices_window_and_padding():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        idx = clip_indices(30, 4, 3, g)
        assert np.all(np.diff(idx) == 3) and idx[0] >= 0 and idx[-1] <= 29
    assert clip_indices(5, 4, 3, g).tolist() == [0, 3, 4, 4]  # short video: last frame repeated


def test_video_folder_image_folder_and_droid_sources(tmp_path):
    (tmp_path / "vids" / "sub").mkdir(parents=True)
    encode_video(tmp_path / "vids" / "a.mp4", _frames(12, 24, 32), fps=15)
    encode_video(tmp_path / "vids" / "sub" / "b.mp4", _frames(6, 24, 32), fps=15)
    ds = build_dataset(DataConfig(source="videos", path=str(tmp_path / "vids"), frames_per_clip=4, frame_step=2,
                                  crop_size=16))
    assert len(ds) == 2
    clip = ds[(0, 7)]
    assert clip.shape == (3, 4, 16, 16) and torch.equal(clip, ds[(0, 7)])
    red = _unnormalize(clip)[0].mean(dim=(1, 2))
    assert torch.all(red[1:] > red[:-1])  # frames in temporal order

    (tmp_path / "imgs").mkdir()
    with av.open(str(tmp_path / "imgs" / "x.png"), "w", format="image2") as c:
        s = c.add_stream("png")
        s.width, s.height, s.pix_fmt = 32, 24, "rgb24"
        for p in itertools.chain(s.encode(av.VideoFrame.from_ndarray(_frames(1)[0], format="rgb24")), s.encode()):
            c.mux(p)
    img = build_dataset(DataConfig(source="images", path=str(tmp_path / "imgs"), frames_per_clip=2, crop_size=16))
    x = img[(0, 0)]
    assert x.shape == (3, 2, 16, 16) and torch.equal(x[:, 0], x[:, 1])

    t = 20
    cart = np.zeros((t, 6))
    cart[:, 0] = np.linspace(0.3, 0.5, t)
    write_episode(tmp_path / "droid" / "ep0", cart, np.zeros(t), {"cam1": _frames(t, 24, 32), "cam2": _frames(t, 24, 32)})
    droid = build_dataset(DataConfig(source="droid", path=str(tmp_path / "droid"), frames_per_clip=4, fps=5,
                                     crop_size=16))
    assert len(droid) == 2  # one item per camera
    assert droid[(1, 3)].shape == (3, 4, 16, 16)
    one_cam = build_dataset(DataConfig(source="droid", path=str(tmp_path / "droid"), cameras=["ext1"],
                                       frames_per_clip=4, crop_size=16))
    assert len(one_cam) == 1

    from droid_data.cache import convert

    convert(tmp_path / "droid", tmp_path / "cache.zarr", size=24, cameras=["ext1"], progress=False)
    cached = build_dataset(DataConfig(source="droid_cache", path=str(tmp_path / "cache.zarr"), frames_per_clip=4,
                                      fps=5, crop_size=16))
    assert len(cached) == 1
    c = cached[(0, 11)]
    assert c.shape == (3, 4, 16, 16) and torch.equal(c, cached[(0, 11)])
    red = _unnormalize(c)[0].mean(dim=(1, 2))
    assert torch.all(red[1:] > red[:-1])  # frames in temporal order


def test_missing_data_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no video files"):
        build_dataset(DataConfig(source="videos", path=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_dataset(DataConfig(source="images", path=str(tmp_path / "nope")))
    with pytest.raises(ValueError, match="data.path"):
        DataConfig(source="videos")
    with pytest.raises(ValueError, match="data.source"):
        DataConfig(source="kinetics")


def test_step_sampler_shards_ranks_and_resumes_at_any_step():
    n, b = 10, 3
    streams = [list(itertools.islice(iter(StepSampler(n, b, seed=1, rank=r, world_size=2)), 15)) for r in (0, 1)]
    first_pass = [{i for i, _ in s[:5]} for s in streams]
    assert not first_pass[0] & first_pass[1] and len(first_pass[0] | first_pass[1]) == 10
    full = list(itertools.islice(iter(StepSampler(n, b, seed=1)), 40))
    assert len({s for _, s in full}) == 40  # every item gets its own augmentation seed
    for start in (1, 3, 7):
        resumed = list(itertools.islice(iter(StepSampler(n, b, seed=1, start_step=start)), 40 - start * b))
        assert resumed == full[start * b:]
    with pytest.raises(ValueError, match="cannot feed 4 ranks"):
        StepSampler(3, 1, world_size=4)
