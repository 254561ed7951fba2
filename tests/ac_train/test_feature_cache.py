import numpy as np
import pytest
import torch

from droid_data import pose_diffs, read_episode
from droid_data.synthetic import write_synthetic_episode
from droid_data.video import center_crop_resize
from vjepa_ac import feature_cache as fc
from vjepa_ac.ac_train import encoder_spec
from vjepa_ac.runtime import build_encoder, encode


@pytest.fixture
def setup(tmp_path, ac_config):
    for i, length in enumerate((12, 14, 10)):
        write_synthetic_episode(tmp_path / "data" / f"ep{i}", length=length, size=(24, 40), seed=i)
    cfg = ac_config(encoder_name="VisionTransformer", encoder_kwargs={"embed_dim": 8, "depth": 1, "num_heads": 2},
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
    frames = center_crop_resize(ep.load_frames("ext1"), cfg.model.img_size, cfg.data.crop_aspect)
    want = encode(encoder, torch.from_numpy(frames), normalize_reps=False)
    start = int(ds.starts[1])
    torch.testing.assert_close(torch.from_numpy(ds._features[start:start + ep.num_frames]), want)
    np.testing.assert_allclose(ds._states[start:start + ep.num_frames], ep.states)


def test_clips_follow_the_official_sampling(setup):
    tmp_path, _, _, store = setup
    ds = fc.FeatureClipDataset(store, frames_per_clip=3, fps=4.0, episodes=[0, 1])
    # 15 fps video at 4 fps -> step ceil(15 / 4) = 4; a 3-frame clip spans 9 frames: 12 - 8 + 14 - 8 windows.
    assert list(ds.steps) == [4, 4, 4]
    assert len(ds) == (12 - 8) + (14 - 8)
    item = ds[len(ds) - 1]  # episode 1, first frame 5 -> frames 5, 9, 13
    ep = read_episode(tmp_path / "data" / "ep1")
    states = ep.states[[5, 9, 13]]
    np.testing.assert_allclose(item["states"].numpy(), states, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(item["actions"].numpy(), pose_diffs(states), rtol=1e-5, atol=1e-6)
    assert item["latents"].shape == (3, 4, 8) and item["latents"].dtype == torch.float32


def test_on_the_fly_clips_encode_like_the_store(setup):
    """droid_data's raw clip dataset (on-the-fly path) gives frames whose latents are the stored ones."""
    tmp_path, cfg, encoder, store = setup
    train, val, counts = fc.frame_datasets(tmp_path / "data", cfg)
    assert counts == (2, 1) and len(train) == 2 and len(val) == 1
    feats = fc.FeatureClipDataset(store, frames_per_clip=3, fps=4.0)
    item = val[0]
    assert set(item) == {"frames", "states", "actions"}
    row = int(np.argmin(np.abs(feats._states[:, 0] - item["states"][0, 0].item())))  # locate the clip's frame 0
    rows = row + 4 * np.arange(3)
    torch.testing.assert_close(item["states"], torch.from_numpy(feats._states[rows]).float())
    torch.testing.assert_close(encode(encoder, item["frames"], normalize_reps=False),
                               torch.from_numpy(feats._features[rows]))


def test_store_from_a_droid_data_cache_equals_store_from_raw(setup):
    from droid_data.cache import convert

    tmp_path, cfg, encoder, store = setup
    convert(tmp_path / "data", tmp_path / "clips.zarr", size=cfg.model.img_size, cameras=["ext1"], progress=False)
    other = fc.build_feature_cache(tmp_path / "clips.zarr", tmp_path / "f2.zarr", encoder, cfg,
                                   encoder_spec(cfg), progress=False)
    a, b = fc.FeatureClipDataset(store, 3, 4.0), fc.FeatureClipDataset(other, 3, 4.0)
    assert len(a) == len(b)
    torch.testing.assert_close(a[len(a) - 1]["latents"], b[len(b) - 1]["latents"])
    torch.testing.assert_close(a[0]["actions"], b[0]["actions"])


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


def test_encoder_architecture_read_from_a_pretraining_checkpoint(tmp_path):
    from vjepa_ac.ac_train import load_ac_config, load_frozen_encoder, resolve_encoder_spec
    from vjepa_ac.config import to_dict
    from vjepa_ac.pretrain import build_encoder as build_pretrain_encoder
    from vjepa_ac.pretrain import load_pretrain_config

    pre_cfg = load_pretrain_config("tiny-pretrain")
    source = build_pretrain_encoder(pre_cfg)
    torch.save({"config": to_dict(pre_cfg), "target_encoder": source.state_dict()}, tmp_path / "pre.pt")
    cfg = load_ac_config("ac-tiny-pretrained")
    encoder = load_frozen_encoder(cfg, tmp_path / "pre.pt")
    for k, v in source.state_dict().items():
        torch.testing.assert_close(encoder.state_dict()[k], v)
    # The spec stored in AC checkpoints rebuilds the same architecture without the pretraining file.
    rebuilt = build_encoder(resolve_encoder_spec(cfg, tmp_path / "pre.pt"))
    assert rebuilt.state_dict().keys() == source.state_dict().keys()
    with pytest.raises(ValueError, match="from_checkpoint"):
        resolve_encoder_spec(cfg, None)


def test_large_stores_are_read_from_disk_per_clip(setup, monkeypatch):
    _, _, _, store = setup
    in_memory = fc.FeatureClipDataset(store, frames_per_clip=3, fps=4.0)
    monkeypatch.setattr(fc, "IN_MEMORY_BYTES", 0)
    on_disk = fc.FeatureClipDataset(store, frames_per_clip=3, fps=4.0)
    assert on_disk._features is None and len(on_disk) == len(in_memory)
    for i in (0, len(on_disk) - 1):
        torch.testing.assert_close(on_disk[i]["latents"], in_memory[i]["latents"])
