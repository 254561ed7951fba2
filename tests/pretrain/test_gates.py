"""The three gates of the pretraining issue, plus trainer details."""
import pytest
import torch

from vjepa_ac.masks import MultiBlockMask2D, mask_generator
from vjepa_ac.pretrain import (
    EMAManager,
    JEPATrainer,
    build_encoder,
    build_mask_sampler,
    build_predictor,
    gather_tokens,
)
from vjepa_ac.video_data import build_dataset


def _trainer(cfg, seed=0):
    torch.manual_seed(seed)
    enc = build_encoder(cfg)
    return JEPATrainer(enc, build_predictor(cfg, enc.embed_dim), cfg, "cpu")


def _clips(cfg, n=4, offset=0):
    ds = build_dataset(cfg.data)
    return torch.stack([ds[(offset + i, offset + i)] for i in range(n)])


def test_gate1_forward_gives_valid_loss_that_decreases_over_100_steps(tiny):
    cfg = tiny()
    tr, clips, sampler = _trainer(cfg), _clips(cfg), build_mask_sampler(cfg)
    losses = []
    for step in range(100):
        me, mp = sampler(clips.shape[0], mask_generator(step, seed=0))
        m = tr.train_step(clips, me, mp)
        tr.update_ema(step)
        assert torch.isfinite(torch.tensor(m["loss"])) and m["loss"] > 0
        losses.append(m["loss"])
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.8 * first, (first, last)
    # The falling loss is not bought with a collapse: target features keep their spread.
    assert m["target_std"] > 0.1 and m["target_rank"] > 3


def test_train_step_loss_is_the_masked_l1_against_layer_normed_ema_targets(tiny):
    cfg = tiny()
    tr, clips = _trainer(cfg), _clips(cfg)
    me, mp = build_mask_sampler(cfg)(4, mask_generator(0, 0))
    with torch.no_grad():
        h = torch.nn.functional.layer_norm(tr.ema.get_target_encoder()(clips), (48,))
        expected = sum(
            (tr.predictor(tr.encoder(clips, masks=e), e, p, mask_index=i) - gather_tokens(h, p)).abs().mean()
            for i, (e, p) in enumerate(zip(me, mp))) / len(me)
    assert tr.train_step(clips, me, mp)["loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_gate2_target_encoder_follows_the_momentum_schedule(tiny):
    cfg = tiny(ema_start=0.9, ema_end=0.99, ema_schedule="linear")
    tr, clips, sampler = _trainer(cfg), _clips(cfg), build_mask_sampler(cfg)
    enc, tgt = tr.encoder, tr.ema.get_target_encoder()
    assert all(p.requires_grad is False for p in tgt.parameters())
    for step in range(5):
        before = [p.detach().clone() for p in tgt.parameters()]
        tr.train_step(clips, *sampler(4, mask_generator(step, 0)))
        assert any(not torch.equal(a, b) for a, b in zip(before, enc.parameters()))
        m = tr.update_ema(step)
        expected_m = 0.9 + (0.99 - 0.9) * step / cfg.optim.total_steps  # linear from ema_start to ema_end
        assert m == pytest.approx(expected_m)
        for b, p_enc, p_tgt in zip(before, enc.parameters(), tgt.parameters()):
            torch.testing.assert_close(p_tgt, expected_m * b + (1 - expected_m) * p_enc.detach(), rtol=0, atol=1e-6)
    diffs = [(a - b).abs().max().item() for a, b in zip(enc.parameters(), tgt.parameters())]
    assert max(diffs) > 1e-4  # the target lags behind the encoder


def test_ema_manager_cosine_schedule_and_tuple_forms():
    enc = torch.nn.Linear(3, 3)
    ema = EMAManager(enc, (0.5, 1.0, "cosine"), total_steps=10)
    assert ema.update(0) == pytest.approx(0.5) and ema.schedule.value(10) == pytest.approx(1.0)
    with torch.no_grad():
        enc.weight.add_(1.0)
    old = ema.get_target_encoder().weight.clone()
    m = ema.update(5)
    assert m == pytest.approx(0.75)
    torch.testing.assert_close(ema.get_target_encoder().weight, m * old + (1 - m) * enc.weight)


def test_gate3_save_load_restores_everything_and_resumes_with_identical_loss(tiny, tmp_path):
    cfg = tiny(use_float16=True)  # enables the GradScaler so its state is part of the round trip
    sampler, clips = build_mask_sampler(cfg), [_clips(cfg, offset=4 * i) for i in range(6)]

    def run(tr, steps):
        out = []
        for s in steps:
            out.append(tr.train_step(clips[s % 6], *sampler(4, mask_generator(s, 0)))["loss"])
            tr.update_ema(s)
        return out

    a = _trainer(cfg, seed=0)
    run(a, range(3))
    a.save_checkpoint(tmp_path / "latest.pt", epoch=1)
    ckpt = torch.load(tmp_path / "latest.pt", weights_only=True)
    official = {"encoder", "predictor", "target_encoder", "opt", "scaler", "epoch", "loss", "batch_size",
                "world_size", "lr"}
    assert official <= set(ckpt) and ckpt["epoch"] == 1 and ckpt["scaler"] is not None
    assert all(k.startswith("module.backbone.") for k in ckpt["encoder"])
    losses_a = run(a, range(3, 7))

    b = _trainer(cfg, seed=123)  # different initial weights: everything must come from the file
    assert b.load_checkpoint(tmp_path / "latest.pt") == 1 and b.global_step == 3
    b_state = torch.load(tmp_path / "latest.pt", weights_only=True)
    for name in ("encoder", "predictor"):
        for k, v in getattr(b, name).state_dict().items():
            assert torch.equal(v, b_state[name]["module.backbone." + k])
    assert b.scaler.state_dict() == ckpt["scaler"]
    assert b.optimizer.state_dict()["state"].keys() == ckpt["opt"]["state"].keys()
    losses_b = run(b, range(3, 7))
    assert losses_a == losses_b
    for pa, pb in zip(a.ema.get_target_encoder().parameters(), b.ema.get_target_encoder().parameters()):
        assert torch.equal(pa, pb)


def test_image_mode_uses_one_context_for_four_targets(tiny):
    cfg = tiny(data={"source": "synthetic", "frames_per_clip": 2})  # one tubelet: an image as a 2-frame clip
    me, mp = MultiBlockMask2D(4, 4)(4, mask_generator(0, 0))
    assert len(me) == 1 and len(mp) == 4
    tr = _trainer(cfg)
    m = tr.train_step(_clips(cfg), me, mp)
    assert m["loss"] > 0


def test_vicreg_terms_are_reported_and_mismatched_masks_rejected(tiny):
    cfg = tiny(vicreg_var_weight=1.0, vicreg_cov_weight=0.04)
    tr, clips = _trainer(cfg), _clips(cfg)
    me, mp = build_mask_sampler(cfg)(4, mask_generator(0, 0))
    m = tr.train_step(clips, me, mp)
    assert m["vicreg_var"] >= 0 and m["vicreg_cov"] >= 0
    with pytest.raises(ValueError, match="2 context masks and 3 target masks"):
        tr.train_step(clips, me, mp + mp[:1])


def test_start_from_an_official_style_file_keeps_lr_scale(tiny, tmp_path):
    cfg = tiny(encoder_lr_scale=0.1)
    a = _trainer(cfg)
    a.train_step(_clips(cfg), *build_mask_sampler(cfg)(4, mask_generator(0, 0)))
    state = a.state(epoch=1)
    for g in state["opt"]["param_groups"]:  # the official groups carry no name / lr_scale
        g.pop("name")
        g.pop("lr_scale")
    del state["target_encoder"]
    state["encoder"] = {k.replace("module.backbone.", "module."): v for k, v in state["encoder"].items()}
    torch.save(state, tmp_path / "official.pt")
    b = _trainer(cfg, seed=5)
    b.start_from(tmp_path / "official.pt")
    assert b.global_step == 0
    assert [g["lr_scale"] for g in b.optimizer.param_groups] == [0.1, 1.0, 0.1, 1.0]
    for pa, pb in zip(a.encoder.parameters(), b.ema.get_target_encoder().parameters()):
        assert torch.equal(pa, pb)  # no target_encoder in the file: the target starts from the encoder
    assert b.optimizer.state_dict()["state"][0]["step"] == 1
