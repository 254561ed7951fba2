"""Pretraining under FSDP2 on 2 gloo processes (CPU, torchrun): the sharded step equals the single-process step on
the whole batch, and a run saved sharded, loaded and continued equals the uninterrupted run."""
from pathlib import Path

import torch

from tests.pretrain.conftest import run_two_processes, tiny_config
from vjepa_ac.masks import mask_generator
from vjepa_ac.metrics_log import read_metrics
from vjepa_ac.pretrain import JEPATrainer, build_encoder, build_mask_sampler, build_predictor
from vjepa_ac.video_data import build_dataset

WORKER = Path(__file__).with_name("fsdp_worker.py")
STEPS, GLOBAL_BATCH = 2, 4


def fixed_steps(rank: int, world: int, parallel: str):
    """STEPS trainer steps (+ EMA) on one fixed global batch and masks; rank r takes its rows. Returns the
    (all-reduced) losses and the trainer."""
    cfg = tiny_config(parallel=parallel, stats_every=1)
    torch.manual_seed(cfg.run.seed)
    encoder = build_encoder(cfg)
    trainer = JEPATrainer(encoder, build_predictor(cfg, encoder.embed_dim), cfg, "cpu")
    data = build_dataset(cfg.data)
    clips = torch.stack([data[i] for i in range(GLOBAL_BATCH)])
    rows = slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)
    losses = []
    for step in range(STEPS):
        masks_enc, masks_pred = build_mask_sampler(cfg)(GLOBAL_BATCH, mask_generator(step, cfg.run.seed, 0))
        metrics = trainer.train_step(clips[rows], [m[rows] for m in masks_enc], [m[rows] for m in masks_pred])
        trainer.update_ema(step)
        losses.append(metrics["loss"])
    return losses, trainer


def test_fsdp_two_processes_equal_one_process_and_resume_exactly(tmp_path):
    run_two_processes(WORKER, tmp_path)

    sharded = torch.load(tmp_path / "fsdp_steps.pt", weights_only=True)
    losses, single = fixed_steps(0, 1, parallel="ddp")
    torch.testing.assert_close(torch.tensor(sharded["losses"]), torch.tensor(losses), rtol=1e-5, atol=1e-6)
    # Adam's first steps move a weight by about lr * sign(grad): a ~0 gradient may go either way by rounding,
    # so weights are compared to a fraction of one step (lr 1e-3)
    for key, module in (("encoder", single.encoder), ("target", single.ema.target)):
        for k, v in module.state_dict().items():
            torch.testing.assert_close(sharded[key][k], v, rtol=0, atol=1e-4, msg=f"{key}.{k}")

    a = read_metrics(tmp_path / "straight" / "metrics.csv")
    b = read_metrics(tmp_path / "resumed" / "metrics.csv")  # steps 1-2, then 3-4 after the resume
    assert a["step"] == b["step"] == [1, 2, 3, 4]
    torch.testing.assert_close(torch.tensor(b["loss"]), torch.tensor(a["loss"]), rtol=1e-6, atol=1e-7)
    assert len(list((tmp_path / "resumed" / "latest.dcp").glob("*.distcp"))) == 2  # one shard file per rank
    ca = torch.load(tmp_path / "straight" / "latest.pt", weights_only=True)
    cb = torch.load(tmp_path / "resumed" / "latest.pt", weights_only=True)
    assert ca["step"] == cb["step"] == 4 and ca["epoch"] == cb["epoch"] == 2 and cb["opt"] is None
    for key in ("encoder", "predictor", "target_encoder"):
        for k, v in ca[key].items():
            torch.testing.assert_close(cb[key][k], v, rtol=1e-6, atol=1e-7, msg=f"{key}.{k}")
