"""FSDP2 AC training on 2 gloo processes (CPU): the sharded step equals the single-process step, and a run saved
sharded, loaded and continued equals the uninterrupted run."""
import os
from dataclasses import replace

import pytest
import torch

from tests.ac_train.test_training import LatentClips, _free_port, tiny_config
from vjepa_ac.ac_train import ACObjective, encoder_spec, load_training_state, predictor_spec, train
from vjepa_ac.metrics_log import read_metrics
from vjepa_ac.optim import build_adamw
from vjepa_ac.runtime import build_encoder, build_predictor, load_ac_checkpoint, normalize_latents

STEPS, GLOBAL_BATCH = 2, 4


def _manual_steps(cfg, rank: int, world: int, dist_info=None):
    """STEPS AdamW steps of the AC objective on one fixed global batch; rank r takes its share of it. Returns
    the per-step global losses and the predictor."""
    from vjepa_ac.distributed import all_reduce_mean
    from vjepa_ac.sharding import shard

    torch.manual_seed(cfg.run.seed + 100 * rank)  # different on each rank: shard() must copy rank 0's weights
    if rank == 0:
        torch.manual_seed(cfg.run.seed)
    predictor = build_predictor(predictor_spec(cfg, 16))
    if dist_info is not None:
        shard(predictor, predictor.predictor_blocks, dist_info, [(predictor, "forward_next"),
              *((blk, "forward_cached") for blk in predictor.predictor_blocks)])
    objective = ACObjective(predictor, cfg.loss.auto_steps, cfg.loss.loss_exp, cfg.loss.normalize_reps)
    optimizer = build_adamw({"predictor": predictor}, 1e-3, 0.04)
    clips = LatentClips(GLOBAL_BATCH, 3).items
    share = GLOBAL_BATCH // world
    mine = clips[rank * share:(rank + 1) * share]
    h = normalize_latents(torch.stack([c["latents"] for c in mine]), True)
    actions, states = torch.stack([c["actions"] for c in mine]), torch.stack([c["states"] for c in mine])
    losses = []
    for _ in range(STEPS):
        loss = objective(h, actions, states)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(all_reduce_mean(loss.detach()).item())
    return losses, predictor


def _worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from vjepa_ac.distributed import init_distributed
    from vjepa_ac.sharding import full_model_state

    info = init_distributed("cpu")
    cfg = tiny_config(run={"parallel": "fsdp", "seed": 5})
    losses, predictor = _manual_steps(cfg, rank, world, info)
    weights = full_model_state(predictor)
    if rank == 0:
        torch.save({"losses": losses, "weights": weights}, os.path.join(out, "manual.pt"))

    # train(): uninterrupted vs stopped after 4 steps (sharded save), loaded and continued
    cfg = tiny_config(optim={"total_steps": 4}, run={"parallel": "fsdp", "checkpoint_every": 2, "eval_every": 4})
    for name, stops in (("straight", [None]), ("resumed", [2, None])):
        for max_steps in stops:
            run = replace(cfg, run=replace(cfg.run, out=os.path.join(out, name), max_steps=max_steps))
            torch.manual_seed(cfg.run.seed)
            train(run, LatentClips(16, 1), LatentClips(4, 2), encoder=build_encoder(encoder_spec(cfg)),
                  data_info={"video_fps": 4.0, "frame_step": 1}, progress=False)
    dist.barrier()
    dist.destroy_process_group()


def test_fsdp_two_processes_equal_one_process_and_resume_exactly(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)

    # the sharded step = the single-process step on the whole batch (FSDP averages gradients over ranks)
    sharded = torch.load(tmp_path / "manual.pt", weights_only=True)
    single_losses, single = _manual_steps(tiny_config(run={"seed": 5}), 0, 1)
    torch.testing.assert_close(torch.tensor(sharded["losses"]), torch.tensor(single_losses), rtol=1e-5, atol=1e-6)
    assert single_losses[-1] < single_losses[0]  # the steps did something
    # Adam's first steps move each weight by about lr * sign(grad), so a bias whose gradient is ~0 may move
    # either way by rounding: weights are compared to a fraction of one step (lr 1e-3)
    for k, v in single.state_dict().items():
        torch.testing.assert_close(sharded["weights"][k], v, rtol=0, atol=1e-4, msg=k)

    # saved sharded, loaded, continued = uninterrupted
    a = read_metrics(tmp_path / "straight" / "metrics.csv")
    b = read_metrics(tmp_path / "resumed" / "metrics.csv")
    assert a["step"] == b["step"] == list(range(1, 5))
    torch.testing.assert_close(torch.tensor(b["loss"]), torch.tensor(a["loss"]), rtol=1e-6, atol=1e-7)
    assert (tmp_path / "resumed" / "latest.dcp").is_dir() and len(list((tmp_path / "resumed" / "latest.dcp").glob(
        "*.distcp"))) == 2  # one shard file per rank
    pa = torch.load(tmp_path / "straight" / "latest.pt", weights_only=True)
    pb = torch.load(tmp_path / "resumed" / "latest.pt", weights_only=True)
    assert pa["step"] == pb["step"] == 4 and pb["opt"] is None  # the optimizer state lives in latest.dcp
    for k in pa["predictor"]:
        torch.testing.assert_close(pb["predictor"][k], pa["predictor"][k], rtol=1e-6, atol=1e-7, msg=k)
    # latest.pt holds the gathered weights: the planner's loader rebuilds the predictor from it
    _, predictor, _ = load_ac_checkpoint(tmp_path / "resumed" / "latest.pt")
    for k, v in predictor.state_dict().items():
        assert torch.equal(v, pb["predictor"][k]), k
    # ... but a DDP / single-process resume from it is refused with the way out
    with pytest.raises(ValueError, match=r"latest.pt: no optimizer state .*latest.dcp.*run.parallel=fsdp"):
        load_training_state(tmp_path / "resumed" / "latest.pt", predictor, build_adamw({"p": predictor}, 1e-3, 0.0),
                            "cpu")
