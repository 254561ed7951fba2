"""Multi-block masks: shapes, disjointness, temporal consistency, no positional bias, determinism."""
import pytest
import torch

from vjepa_ac.masks import (
    VJEPA2_MASKS,
    MaskConfig,
    MultiBlockMask2D,
    MultiBlockMask3D,
    equalize,
    mask_generator,
)

T, H, W = 4, 8, 8


def _check_pair(enc, pred, n_tokens):
    assert enc.dtype == torch.int64 and enc.dim() == 2 and pred.dim() == 2 and enc.shape[0] == pred.shape[0]
    for e, p in zip(enc, pred):
        assert torch.equal(e, e.sort().values) and torch.equal(p, p.sort().values)
        assert len(set(e.tolist())) == len(e) and len(set(p.tolist())) == len(p)
        assert not set(e.tolist()) & set(p.tolist())  # context never contains a target
        assert max(e.max(), p.max()) < n_tokens and min(e.min(), p.min()) >= 0


def test_3d_masks_have_equal_lengths_and_disjoint_context_and_targets():
    gen = MultiBlockMask3D(VJEPA2_MASKS, T, H, W)
    enc, pred = gen(8, mask_generator(0, seed=1))
    assert len(enc) == len(pred) == 2
    for e, p in zip(enc, pred):
        _check_pair(e, p, T * H * W)
    # the large-block generator hides more than the small one
    assert enc[1].shape[1] < enc[0].shape[1]


def test_single_sample_masks_are_complementary_and_the_same_through_time():
    gen = MultiBlockMask3D([MaskConfig(num_blocks=3, spatial_scale=(0.2, 0.2))], T, H, W)
    for step in range(10):
        enc, pred = gen(1, mask_generator(step, seed=0))
        e, p = enc[0][0], pred[0][0]
        assert sorted(e.tolist() + p.tolist()) == list(range(T * H * W))
        frames = [set((p[(p // (H * W)) == t] % (H * W)).tolist()) for t in range(T)]
        assert all(f == frames[0] for f in frames) and frames[0]


def test_temporal_scale_and_max_temporal_keep():
    cfg = MaskConfig(num_blocks=1, spatial_scale=(0.1, 0.1), temporal_scale=(0.5, 0.5), max_temporal_keep=0.5)
    enc, pred = MultiBlockMask3D([cfg], T, H, W)(1, mask_generator(0, 0))
    frames_in_context = set((enc[0][0] // (H * W)).tolist())
    assert frames_in_context <= {0, 1}  # frames from int(4 * 0.5) = 2 on are hidden
    assert set((pred[0][0] // (H * W)).tolist()) >= {2, 3}


def _keep_lowest(index_sets):
    """The official truncation: every mask cut to the batch minimum by keeping its lowest indices."""
    k = min(len(s) for s in index_sets)
    return torch.stack([s[:k] for s in index_sets])


def _drop_balance(truncate, batches=150):
    """Fraction of dropped context tokens that lie in the last frame vs the first frame."""
    gen = MultiBlockMask3D([MaskConfig(num_blocks=4, spatial_scale=(0.1, 0.2))], T, H, W)
    dropped = torch.zeros(T)
    for step in range(batches):
        g = mask_generator(step, seed=3)
        full = [k.nonzero().squeeze(1) for k in
                (gen._sample_one(gen.configs[0], (T, 3, 3), g) for _ in range(8))]
        kept = truncate(full, g)
        for s, k in zip(full, kept):
            gone = torch.tensor(sorted(set(s.tolist()) - set(k.tolist())), dtype=torch.long)
            dropped += torch.bincount(gone // (H * W), minlength=T).float()
    return dropped[-1] / dropped.sum(), dropped[0] / dropped.sum()


def test_equalization_has_no_bias_against_late_frames_unlike_truncation():
    late, early = _drop_balance(lambda s, g: equalize(s, H * W, g))
    assert abs(late - early) < 0.05, (late, early)
    late_t, early_t = _drop_balance(lambda s, g: _keep_lowest(s))  # the check detects the official bias
    assert late_t > 0.9 and early_t < 0.05


def test_equalization_drops_whole_tubes_when_it_can():
    g = mask_generator(0, 0)
    a = torch.arange(T * H * W)  # every token
    b = torch.cat([torch.arange(t * H * W, t * H * W + 10) for t in range(T)])  # 10 tubes
    out = equalize([a, b], H * W, g)
    kept_a = out[0]
    positions = (kept_a % (H * W)).bincount(minlength=H * W)
    assert set(positions.tolist()) <= {0, T}  # each spatial position kept in all frames or none


def test_masks_are_a_function_of_seed_step_and_rank():
    gen = MultiBlockMask3D(VJEPA2_MASKS, T, H, W)
    a, b = gen(4, mask_generator(5, 0)), gen(4, mask_generator(5, 0))
    assert all(torch.equal(x, y) for x, y in zip(a[0] + a[1], b[0] + b[1]))
    c = gen(4, mask_generator(6, 0))
    d = gen(4, mask_generator(5, 0, rank=1))
    assert not all(torch.equal(x, y) for x, y in zip(a[0], c[0]))
    assert not all(torch.equal(x, y) for x, y in zip(a[0], d[0]))


def test_2d_ijepa_masks():
    gen = MultiBlockMask2D(14, 14)
    enc, preds = gen(6, mask_generator(0, 0))
    assert len(enc) == 1 and len(preds) == 4
    for p in preds:
        _check_pair(enc[0], p, 14 * 14)
        assert 0.1 * 196 <= p.shape[1] <= 0.25 * 196  # target scale 0.15–0.2
    assert enc[0].shape[1] >= 4


@pytest.mark.parametrize("kwargs, match", [
    ({"num_blocks": 0}, "num_blocks"),
    ({"spatial_scale": (0.5, 0.2)}, "spatial_scale"),
    ({"temporal_scale": (0.5, 1.5)}, "temporal_scale"),
    ({"max_temporal_keep": 0.0}, "max_temporal_keep"),
])
def test_bad_mask_config_is_reported(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaskConfig(**kwargs)


def test_impossible_masks_raise_instead_of_looping():
    cfg = MaskConfig(num_blocks=1, spatial_scale=(1.0, 1.0), aspect_ratio=(1.0, 1.0))
    with pytest.raises(RuntimeError, match="hid every token"):
        MultiBlockMask3D([cfg], 2, 4, 4, max_tries=3)(1, mask_generator(0, 0))
