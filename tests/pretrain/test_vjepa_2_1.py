"""The V-JEPA 2.1 objective (model.app vjepa_2_1): dense context loss, deep self-supervision, presets, resume."""
import math
import shutil
from dataclasses import replace

import pytest
import torch

from tests.pretrain.test_gates import _clips, _trainer
from vjepa_ac.losses import context_distance_weights, layer_norm_levels, level_losses
from vjepa_ac.masks import mask_generator
from vjepa_ac.metrics_log import read_metrics
from vjepa_ac.models import VisionTransformerPredictor21
from vjepa_ac.pretrain import _pairs, build_mask_sampler, gather_tokens, load_pretrain_config, train
from vjepa_ac.runtime import load_pretrain_encoder
from vjepa_ac.schedules import LinearWarmupHold


def tiny21(tiny, **overrides):
    """The shared tiny config with the 2.1 objective: 4 encoder blocks (= the 4 hierarchical layers)."""
    options = {"app": "vjepa_2_1", "depth": 4, "lambda_value_vid": 0.5, "lambda_progressive": False,
               "weight_distance_loss": True, **overrides}
    return tiny(**options)


def test_context_weights_are_the_square_root_of_the_distance_to_the_nearest_masked_token():
    grid = 4  # 2 tubelets x 4 x 4 tokens; id = t*16 + row*4 + column
    pred = torch.tensor([[0, 5]])  # (t0, r0, c0) and (t0, r1, c1)
    enc = torch.tensor([[1, 15, 16, 31]])  # (0,0,1) (0,3,3) (1,0,0) (1,3,3)
    expected = [1.0, math.sqrt(8.0), 1.0, math.sqrt(1 + 8.0)]  # nearest: 0, 5, 0, 5 (Euclidean over t, row, col)
    w = context_distance_weights(pred, enc, grid)
    assert w.shape == (1, 4)
    assert w[0].tolist() == pytest.approx([math.sqrt(d) for d in expected])
    # Brute force on random masks: every context token against every masked one.
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(2 * grid * grid, generator=g)
    pred, enc = perm[:7].unsqueeze(0), perm[7:].unsqueeze(0)

    def pos(i):
        return torch.tensor([i // 16, i % 16 // 4, i % 4], dtype=torch.float)

    brute = [min((pos(int(e)) - pos(int(p))).norm() for p in pred[0]).sqrt() for e in enc[0]]
    assert context_distance_weights(pred, enc, grid)[0].tolist() == pytest.approx([float(b) for b in brute])
    # offset_context_loss: distances in units of a 16-token grid (a 32 grid halves them); refused below 16.
    big = torch.tensor([[0]]), torch.tensor([[4]])
    assert context_distance_weights(*big, 32, offset_context_loss=True).item() == pytest.approx(math.sqrt(2.0))
    with pytest.raises(ValueError, match="offset_context_loss"):
        context_distance_weights(*big, 4, offset_context_loss=True)


def test_weighted_level_losses_are_lambda_over_sqrt_distance_times_l1():
    z, h = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    d = torch.tensor([[1.0, 4.0, 9.0], [1.0, 1.0, 16.0]])
    terms = level_losses(z, h, levels=2, weights=1.0 / d.sqrt())
    manual = (z - h).abs() / d.sqrt().unsqueeze(-1)
    assert len(terms) == 2
    assert terms[0].item() == pytest.approx(manual[..., :4].mean().item())
    assert terms[1].item() == pytest.approx(manual[..., 4:].mean().item())
    assert sum(terms).item() / 2 == pytest.approx(manual.mean().item())  # = the official single mean


def test_lambda_warms_up_linearly_then_holds():
    lam = LinearWarmupHold(0.5, start_step=10, end_step=30)
    assert [lam.value(s) for s in (0, 9, 10, 20, 29, 30, 1000)] == pytest.approx([0, 0, 0, 0.25, 0.475, 0.5, 0.5])
    official = LinearWarmupHold(0.5)
    assert (official.start_step, official.end_step) == (15_000, 30_000)
    with pytest.raises(ValueError):
        LinearWarmupHold(0.5, start_step=30, end_step=30)


def _masked_pairs(tr, cfg, clips, step=0):
    me, mp = build_mask_sampler(cfg)(clips.shape[0], mask_generator(step, seed=0))
    return me, mp, _pairs(me, mp)


def test_loss_is_zero_at_identical_predictions_and_positive_otherwise(tiny):
    cfg = tiny21(tiny)
    tr, clips = _trainer(cfg), _clips(cfg)
    me, mp, pairs = _masked_pairs(tr, cfg, clips)
    h = tr.target_features(clips)
    exact = [(gather_tokens(h, mp[j]), gather_tokens(h, me[i])) for i, j in pairs]
    loss, metrics = tr.objective_2_1(h, exact, pairs, me, mp, step=0)
    assert loss.item() == 0.0 and metrics["loss_pred"] == 0.0 and metrics["loss_context"] == 0.0
    off = [(zp + 0.1, zc - 0.2) for zp, zc in exact]
    loss, metrics = tr.objective_2_1(h, off, pairs, me, mp, step=0)
    assert metrics["loss_pred"] == pytest.approx(0.1, rel=1e-5)
    # The context error 0.2 is weighted by 1/sqrt(d) <= 1, and by lambda = 0.5.
    assert 0.0 < metrics["loss_context"] <= 0.2 + 1e-6
    assert loss.item() == pytest.approx(0.1 + 0.5 * metrics["loss_context"], rel=1e-5)


@pytest.mark.parametrize("levels", [1, 2, 4])
def test_deep_supervision_gives_one_loss_term_per_supervised_depth(tiny, levels):
    cfg = tiny21(tiny, levels_predictor=levels)
    tr, clips = _trainer(cfg), _clips(cfg)
    me, mp, _ = _masked_pairs(tr, cfg, clips)
    d = tr.encoder.embed_dim
    assert tr.target_features(clips).shape[-1] == levels * d
    assert tr.encoder(clips, masks=me[0], training=True).shape[-1] == levels * d
    metrics = tr.train_step(clips, me, mp)
    for name in ("loss_pred", "loss_context"):
        terms = sorted(k for k in metrics if k.startswith(f"{name}_level"))
        assert terms == [f"{name}_level{k}" for k in range(levels)]
        assert all(metrics[t] > 0 for t in terms)
        assert metrics[name] == pytest.approx(sum(metrics[t] for t in terms) / levels, rel=1e-5)
    # Each level's targets are layer-normed on their own.
    h = tr.target_features(clips)
    for chunk in h.split(d, dim=-1):
        assert chunk.mean(-1).abs().max() < 1e-4 and (chunk.std(-1, unbiased=False) - 1).abs().max() < 1e-2
    assert torch.allclose(layer_norm_levels(h, levels), h, atol=1e-5)


def test_predictor_2_1_fuses_levels_and_predicts_the_context_under_official_names():
    pred = VisionTransformerPredictor21(48, 32, 1, 2, img_size=32, patch_size=8, num_frames=4, use_mask_tokens=True,
                                        num_mask_tokens=2, return_all_tokens=True, n_output_distillation=4,
                                        img_temporal_dim_size=1, modality_embedding=True)
    keys = set(pred.state_dict())
    assert {"predictor_embed.0.weight", "predictor_embed.2.weight", "predictor_proj.weight",
            "predictor_proj_context.weight", "video_mod_embed", "img_mod_embed", "mask_tokens.0"} <= keys
    assert not any(k.startswith("predictor_pos_embed") for k in keys)
    x = torch.randn(2, 5, 4 * 48)
    masks_x, masks_y = torch.tensor([[0, 3, 7, 9, 20]] * 2), torch.tensor([[1, 2, 30]] * 2)
    targets, context = pred(x, masks_x, masks_y)
    assert targets.shape == (2, 3, 4 * 48) and context.shape == (2, 5, 4 * 48)
    image_targets, _ = pred(x, masks_x, masks_y, mod="image")
    assert not torch.equal(targets, image_targets)  # the modality token is used
    with pytest.raises(ValueError, match="levels x embed_dim"):
        pred(torch.randn(2, 5, 48), masks_x, masks_y)


def test_tiny_2_1_run_lowers_the_loss_and_resumes_exactly(tiny, tmp_path):
    cfg = tiny21(tiny, epochs=2, steps_per_epoch=12, save_every_epochs=1, log_every=1,
                 output_dir=str(tmp_path / "a"))
    train(cfg)
    a = tmp_path / "a"
    m = read_metrics(a / "metrics.csv")
    first, last = sum(m["loss"][:4]) / 4, sum(m["loss"][-4:]) / 4
    assert last < 0.9 * first, (first, last)
    b = tmp_path / "b"
    b.mkdir()
    shutil.copy(a / "e0.pt", b / "latest.pt")  # a crash after the first epoch
    train(replace(cfg, run=replace(cfg.run, out=str(b))))
    mb = read_metrics(b / "metrics.csv")
    assert mb["step"] == list(range(13, 25))
    assert m["loss"][12:] == mb["loss"] and m["loss_context"][12:] == mb["loss_context"]
    sa, sb = (torch.load(p / "latest.pt", weights_only=True) for p in (a, b))
    for key in ("encoder", "predictor", "target_encoder"):
        assert all(torch.equal(v, sb[key][k]) for k, v in sa[key].items())
    # The checkpoint rebuilds as a V-JEPA 2.1 encoder for AC training and planning.
    encoder, spec = load_pretrain_encoder(a / "latest.pt")
    assert spec["name"] == "custom_2_1" and type(encoder).__name__ == "VisionTransformer21"
    assert encoder(torch.zeros(1, 3, 2, 32, 32)).shape == (1, 16, 48)


def test_2_1_presets_keep_the_official_values_and_bad_settings_name_the_field():
    vitl = load_pretrain_config("vitl-2_1-pretrain-256px-16f")
    m, loss, o = vitl.model, vitl.loss, vitl.optim
    assert (m.app, m.name, m.predictor_depth, m.levels_predictor, m.img_temporal_dim_size) == \
        ("vjepa_2_1", "vit_large", 24, 4, 1)
    assert (loss.predict_all, loss.weight_distance_loss, loss.lambda_value_vid, loss.lambda_progressive) == \
        (True, True, 0.5, True)
    assert (loss.lambda_start_step, loss.lambda_end_step) == (15_000, 30_000)
    assert (o.start_lr, o.lr, o.final_lr, o.warmup_steps, o.total_steps) == (1e-4, 6e-4, 6e-4, 12_000, 300_000)
    cool = load_pretrain_config("vitgigantic-2_1-cooldown-256px-64f")
    assert (cool.model.name, cool.data.frames_per_clip, cool.data.batch_size) == ("vit_gigantic_xformers", 64, 6)
    assert cool.optim.is_anneal and not cool.loss.lambda_progressive and not cool.loss.weight_distance_loss
    assert load_pretrain_config("vitb-2_1-pretrain-256px-16f").model.predictor_depth == 12
    with pytest.raises(ValueError, match="loss.normalize_reps"):
        load_pretrain_config("tiny-2_1-pretrain", {"loss": {"normalize_reps": False}})
    with pytest.raises(ValueError, match="model.app"):
        load_pretrain_config("tiny-2_1-pretrain", {"model": {"app": "vjepa_3"}})
    with pytest.raises(ValueError, match="loss.offset_context_loss"):
        load_pretrain_config("tiny-2_1-pretrain", {"loss": {"offset_context_loss": True}})
    with pytest.raises(ValueError, match="model.use_rope"):
        load_pretrain_config("tiny-2_1-pretrain", {"model": {"use_rope": False}})
    assert not load_pretrain_config("tiny-pretrain", {"model": {"use_rope": False}}).model.use_rope  # V-JEPA 2: either


# The layout of the official configs/train_2_1/vitl16/pretrain-256px-16f.yaml without its image-rank sections
# (img_data, img_mask), with one local folder of videos as its dataset.
OFFICIAL_2_1 = """\
app: vjepa_2_1
nodes: 16
folder: {out}
data: {{dataset_type: VideoDataset, datasets: [{videos}], datasets_weights: [1.0], batch_size: 24, crop_size: 256,
       patch_size: 16, dataset_fpcs: [16, 16, 16], tubelet_size: 2, fps: 4, num_workers: 8, persistent_workers: true,
       pin_mem: true}}
data_aug: {{auto_augment: false, motion_shift: false, random_resize_aspect_ratio: [0.75, 1.35],
           random_resize_scale: [0.3, 1.0], reprob: 0.0}}
loss: {{loss_exp: 1.0, predict_all: true, reg_coeff: 0.0, shift_by_n: 0, weight_distance_loss: true}}
mask:
- {{aspect_ratio: [0.75, 1.5], full_complement: false, max_keep: null, max_temporal_keep: 1.0, num_blocks: 8,
   spatial_scale: [0.15, 0.15], temporal_scale: [1.0, 1.0]}}
- {{aspect_ratio: [0.75, 1.5], full_complement: false, max_keep: null, max_temporal_keep: 1.0, num_blocks: 2,
   spatial_scale: [0.7, 0.7], temporal_scale: [1.0, 1.0]}}
meta: {{dtype: bfloat16, eval_freq: 100, load_checkpoint: true, read_checkpoint: null, save_every_freq: 50,
       seed: 239, use_sdpa: true}}
model: {{has_cls_first: false, img_temporal_dim_size: 1, interpolate_rope: true, is_causal: false,
        lambda_value_img: 0.5, lambda_value_vid: 0.5, local_window: [-1, -1, -1], modality_embedding: true,
        model_name: vit_large, n_registers: 0, n_registers_predictor: 0, normalize_predictor: false, pred_depth: 24,
        pred_embed_dim: 384, pred_is_causal: false, pred_local_window: [-1, -1, -1], pred_num_heads: 12,
        uniform_power: true, use_activation_checkpointing: true, use_mask_tokens: true, use_rope: true,
        vit_conv: false, zero_init_mask_tokens: true}}
optimization: {{ema: [0.99925, 0.99925], epochs: 1000, final_lr: 0.0006, final_weight_decay: 0.04, ipe: 300,
               ipe_scale: 1.25, lr: 0.0006, start_lr: 0.0001, warmup: 40, weight_decay: 0.04}}
"""


def test_official_2_1_yaml_translates_to_the_preset(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    path = tmp_path / "pretrain-256px-16f.yaml"
    path.write_text(OFFICIAL_2_1.format(out=tmp_path / "run", videos=videos))
    ours, preset = load_pretrain_config(path), load_pretrain_config("vitl-2_1-pretrain-256px-16f")
    assert ours.model == preset.model and ours.optim == preset.optim
    assert replace(ours.loss, lambda_start_step=0) == replace(preset.loss, lambda_start_step=0)
    bad = path.read_text().replace("n_registers: 0,", "n_registers: 4,")
    path.write_text(bad)
    with pytest.raises(ValueError, match="model.n_registers"):
        load_pretrain_config(path)
    path.write_text(OFFICIAL_2_1.format(out=tmp_path / "run", videos=videos) + "img_data: {batch_size: 72}\n")
    with pytest.raises(ValueError, match="img_data.*image ranks"):
        load_pretrain_config(path)
