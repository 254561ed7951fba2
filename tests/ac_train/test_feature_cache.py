import numpy as np
import pytest
import torch

from droid_data import pose_diffs, read_episode
from droid_data.synthetic import write_synthetic_episode
from droid_data.video import center_crop_resize
from vjepa_ac import feature_cache as fc
from vjepa_ac.ac_train import ACTrainingConfig, build_encoder, encode_images, encoder_spec


@pytest.fixture
def setup(tmp_path):
    for i, length in enumerate((12, 14, 10)):
        write_synthetic_episode(tmp_path / "data" / f"ep{i}", length=length, size=(24, 40), seed=i)
    cfg = ACTrainingConfig(encoder_name="VisionTransformer",
                           encoder_kwargs={"embed_dim": 8, "depth": 1, "num_heads": 2},
                           encoder_checkpoint_key="encoder", img_size=32, patch_size=16, predictor_num_frames=8,
                           frames_per_clip=3, fps=4.0, camera="ext1", cache_dtype="float32")
    torch.manual_seed(0)
    encoder = build_encoder(encoder_spec(cfg)).eval()
    store = fc.build_feature_cache(tmp_path / "data", tmp_path / "features.zarr", encoder, cfg, encoder_spec(cfg),
                                   "enc.pt", progress=False)
    return tmp_path, cfg, encoder, store


def test_store_holds_every_frame_encoded_as_training_encodes_it(setup):
    tmp_path, cfg, encoder, store = setup
    assert fc.is_feature_cache(store) and not fc.is_feature_cache(tmp_path / "data")
    ds = fc.FeatureClipDataset(store, frames_per_clip=3, fps=4.0)
    ep = read_episode(tmp_path / "data" / "ep1")
    frames = center_crop_resize(ep.load_frames("ext1"), cfg.img_size, cfg.crop_aspect)
    want = encode_images(encoder, torch.from_numpy(frames), normalize_reps=False)
    start = int(ds.starts[1])
    torch.testing.assert_close(torch.from_numpy(ds._features[start:start + ep.num_frames]), want)
    np.testing.assert_allclose(ds._states[start:start + ep.num_frames], ep.states)


def test_clips_follow_the_official_sampling(setup):
    tmp_path, _, _, store = setup
    ds = fc.FeatureClipDataset(store, frames_per_clip=3, fps=4.0, episodes=[0, 1])
    # 15 fps video at 4 fps -> step ceil(15 / 4) = 4; a 3-frame clip spans 9 frames: 12 - 8 + 14 - 8 windows.
    assert fc.frame_step(15.0, 4.0) == 4 and list(ds.steps) == [4, 4, 4]
    assert len(ds) == (12 - 8) + (14 - 8)
    item = ds[len(ds) - 1]  # episode 1, first frame 5 -> frames 5, 9, 13
    ep = read_episode(tmp_path / "data" / "ep1")
    states = ep.states[[5, 9, 13]]
    np.testing.assert_allclose(item["states"].numpy(), states, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(item["actions"].numpy(), pose_diffs(states), rtol=1e-5, atol=1e-6)
    assert item["latents"].shape == (3, 4, 8) and item["latents"].dtype == torch.float32


def test_frame_clips_match_feature_clips(setup):
    tmp_path, cfg, encoder, store = setup
    feats = fc.FeatureClipDataset(store, frames_per_clip=3, fps=4.0, episodes=[2])
    frames = fc.FrameClipDataset(tmp_path / "data", 3, 4.0, cfg.img_size, "ext1", 1.0, episode_subset=[2])
    assert len(feats) == len(frames) == 2
    for i in range(2):
        a, b = feats[i], frames[i]
        torch.testing.assert_close(a["states"], b["states"])
        torch.testing.assert_close(encode_images(encoder, b["frames"], normalize_reps=False), a["latents"])


def test_store_mismatch_and_overwrite_are_refused(setup):
    tmp_path, cfg, encoder, store = setup
    expected = fc.store_attrs(cfg, encoder_spec(cfg), "enc.pt", 4, 8)
    fc.check_store(store, expected)
    with pytest.raises(ValueError, match=r"attrs.img_size expected 64 .*got 32"):
        fc.check_store(store, {**expected, "img_size": 64})
    with pytest.raises(FileExistsError):
        fc.build_feature_cache(tmp_path / "data", store, encoder, cfg, encoder_spec(cfg), progress=False)


def test_split_holds_out_the_last_episodes():
    assert fc.split_episodes(10, 0.1) == (list(range(9)), [9])
    assert fc.split_episodes(10, 0.0) == (list(range(10)), [])
    assert fc.split_episodes(1, 0.5) == ([0], [])
    assert fc.split_episodes(3, 0.05) == ([0, 1], [2])
