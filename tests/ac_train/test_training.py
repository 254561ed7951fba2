"""The training loop on the real model classes: it learns, resumes exactly and runs under 2-process DDP."""
import math
import os
import socket
from dataclasses import replace

import numpy as np
import pytest
import torch

from droid_data.conventions import pose_diffs
from vjepa_ac.ac_train import ACTrainingConfig, encoder_spec, train
from vjepa_ac.config import from_dict
from vjepa_ac.metrics_log import read_metrics
from vjepa_ac.runtime import build_encoder, load_ac_checkpoint

TOKENS, DIM, FRAMES = 4, 16, 4


def tiny_config(**groups) -> ACTrainingConfig:
    """A tiny config; ``groups`` are per-group changes, e.g. ``tiny_config(optim={"total_steps": 24})``."""
    base = {
        "data": {"frames_per_clip": FRAMES, "batch_size": 4},
        "model": {"encoder_name": "VisionTransformer", "encoder_kwargs": {"embed_dim": DIM, "depth": 1, "num_heads": 2},
                  "encoder_checkpoint_key": "encoder", "img_size": 32, "patch_size": 16, "predictor_embed_dim": 32,
                  "predictor_depth": 2, "predictor_num_heads": 2, "predictor_num_frames": 16},
        "optim": {"lr": 1e-3, "start_lr": 1e-4, "warmup_steps": 3, "total_steps": 30, "lr_schedule": "wsd",
                  "decay_fraction": 0.2},
        "run": {"log_every": 1, "eval_every": 10, "eval_clips": 8, "checkpoint_every": 10, "use_bfloat16": False,
                "seed": 5},
    }
    for group, changes in groups.items():
        base[group].update(changes)
    return from_dict(ACTrainingConfig, base, source="tests")


class LatentClips(torch.utils.data.Dataset):
    """Clips whose latents are a fixed random function of the end-effector position (learnable dynamics)."""

    def __init__(self, num_clips: int, seed: int):
        g = np.random.default_rng(seed)
        proj = np.random.default_rng(0).normal(size=(3, TOKENS * DIM))
        self.items = []
        for _ in range(num_clips):
            xyz = 0.4 + np.cumsum(g.normal(scale=0.05, size=(FRAMES, 3)), 0)
            rot = np.cumsum(g.normal(scale=0.05, size=(FRAMES, 3)), 0)
            states = np.concatenate([xyz, rot, g.uniform(0, 1, (FRAMES, 1))], 1)
            latents = np.tanh(xyz @ proj).reshape(FRAMES, TOKENS, DIM)
            self.items.append({"latents": torch.tensor(latents, dtype=torch.float32),
                               "states": torch.tensor(states, dtype=torch.float32),
                               "actions": torch.tensor(pose_diffs(states), dtype=torch.float32)})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def run_train(cfg, out, max_steps=None, num_clips=48):
    cfg = replace(cfg, run=replace(cfg.run, out=str(out), max_steps=max_steps))
    torch.manual_seed(cfg.run.seed)
    encoder = build_encoder(encoder_spec(cfg))
    return train(cfg, LatentClips(num_clips, 1), LatentClips(8, 2), encoder=encoder,
                 data_info={"video_fps": 4.0, "frame_step": 1}, progress=False)


def test_loss_falls_and_checkpoint_rebuilds_the_models(tmp_path):
    cfg = tiny_config(optim={"total_steps": 24}, run={"eval_every": 12})
    result = run_train(cfg, tmp_path)
    m = read_metrics(tmp_path / "metrics.csv")
    assert np.mean(m["loss"][-5:]) < 0.7 * np.mean(m["loss"][:5])
    evals = [i for i, v in enumerate(m["eval/rollout_h1"]) if not math.isnan(v)]
    assert [m["step"][i] for i in evals] == [12, 24]
    assert m["eval/rollout_h1"][evals[-1]] < m["eval/rollout_h1"][evals[0]]  # the held-out error falls too
    assert result["eval"].means()["rollout"][0] == pytest.approx(m["eval/rollout_h1"][evals[-1]])
    _, predictor, config = load_ac_checkpoint(tmp_path / "latest.pt")
    assert config["normalize_reps"] is True and config["predictor"]["depth"] == 2
    state = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert state["step"] == 24 and {"encoder", "predictor", "config", "opt"} <= set(state)
    for k, v in predictor.state_dict().items():
        torch.testing.assert_close(v, state["predictor"][k])
    # The planner's world model loads the checkpoint on its own and predicts what training's rollout predicts.
    from vjepa_ac.runtime import VJEPAWorldModel, encode, rollout

    wm = VJEPAWorldModel.from_checkpoint(tmp_path / "latest.pt")
    images = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    encoder, _, _ = load_ac_checkpoint(tmp_path / "latest.pt")
    latents = wm.encode(images)
    torch.testing.assert_close(latents, encode(encoder, images, normalize_reps=True))
    clip = LatentClips(2, 3)[0]
    actions, state = clip["actions"][None], clip["states"][:1]
    want = rollout(predictor, latents[:1], state, actions, normalize_reps=True)
    torch.testing.assert_close(wm.rollout(latents[:1], state, actions), want)


def test_resume_is_exact(tmp_path):
    cfg = tiny_config(optim={"total_steps": 16}, run={"checkpoint_every": 4, "eval_every": 100})
    run_train(cfg, tmp_path / "straight")
    run_train(cfg, tmp_path / "resumed", max_steps=6)  # stops at 6, saves latest.pt at 6
    assert torch.load(tmp_path / "resumed" / "latest.pt", weights_only=True)["step"] == 6
    run_train(cfg, tmp_path / "resumed")  # resumes at 6, runs to 16
    a = read_metrics(tmp_path / "straight" / "metrics.csv")
    b = read_metrics(tmp_path / "resumed" / "metrics.csv")
    assert a["step"] == b["step"] == list(range(1, 17))
    assert a["loss"] == b["loss"]  # bit-identical, including the steps after the resume
    pa = torch.load(tmp_path / "straight" / "latest.pt", weights_only=True)
    pb = torch.load(tmp_path / "resumed" / "latest.pt", weights_only=True)
    for k in pa["predictor"]:
        assert torch.equal(pa["predictor"][k], pb["predictor"][k]), k


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out):
    """One torchrun-like process: trains, then saves its own predictor (initial and final) and results."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from vjepa_ac import ac_train

    built = []
    original = ac_train.build_predictor

    def recording_build(spec):
        built.append(original(spec))
        torch.save(built[-1].state_dict(), os.path.join(out, f"rank{rank}_init.pt"))
        return built[-1]

    ac_train.build_predictor = recording_build
    cfg = tiny_config(optim={"total_steps": 4}, run={"checkpoint_every": 4, "eval_every": 4, "eval_clips": 8,
                                                     "out": out})
    torch.manual_seed(cfg.run.seed)
    encoder = build_encoder(encoder_spec(cfg))
    # Each rank sees different clips (rank-sharded order); DDP must still keep the weights identical.
    result = train(cfg, LatentClips(32, 1), LatentClips(8, 2), encoder=encoder,
                   data_info={"video_fps": 4.0, "frame_step": 1}, progress=False)
    torch.save(built[-1].state_dict(), os.path.join(out, f"rank{rank}_predictor.pt"))
    torch.save({"eval": result["eval"].means(), "loss": result["metrics"]["loss"]},
               os.path.join(out, f"rank{rank}_result.pt"))
    dist.barrier()
    dist.destroy_process_group()


def test_two_process_ddp_keeps_ranks_identical(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    p0 = torch.load(tmp_path / "rank0_predictor.pt", weights_only=True)
    p1 = torch.load(tmp_path / "rank1_predictor.pt", weights_only=True)
    init = torch.load(tmp_path / "rank0_init.pt", weights_only=True)
    changed = 0
    for k in p0:
        assert torch.equal(p0[k], p1[k]), f"{k} differs between ranks"
        changed += int(not torch.equal(p0[k], init[k]))
    assert changed > len(p0) // 2  # training moved the weights
    r0 = torch.load(tmp_path / "rank0_result.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1_result.pt", weights_only=True)
    assert r0["eval"] == r1["eval"]  # evaluation sums are all-reduced over ranks
    assert r0["loss"] == pytest.approx(r1["loss"])  # the logged loss is the mean over ranks
    ckpt = torch.load(tmp_path / "latest.pt", weights_only=True)
    for k in p0:
        assert torch.equal(ckpt["predictor"][k], p0[k])
