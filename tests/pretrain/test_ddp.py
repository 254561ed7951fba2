"""Two CPU processes (torchrun, gloo) train with different data shards and end with identical weights."""
from pathlib import Path

import torch

from tests.pretrain.conftest import run_two_processes
from vjepa_ac.config import from_dict
from vjepa_ac.pretrain import JEPATrainingConfig, build_encoder

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_process_ddp_keeps_ranks_identical(tmp_path):
    run_two_processes(WORKER, tmp_path)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world_size"] == r1["world_size"] == 2 and r0["step"] == r1["step"] == 4
    assert not torch.equal(r0["first_batch"], r1["first_batch"])  # each rank trained on its own shard
    for key in ("encoder", "predictor", "target"):
        for name, v in r0[key].items():
            assert torch.equal(v, r1[key][name]), f"{key}.{name} differs between ranks"
    # ... and training did move the weights away from the shared initialisation
    cfg = from_dict(JEPATrainingConfig, torch.load(tmp_path / "latest.pt", weights_only=True)["config"])
    torch.manual_seed(cfg.run.seed)
    init = build_encoder(cfg).state_dict()
    assert any(not torch.equal(init[k], r0["encoder"][k]) for k in init)
    ckpt = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and ckpt["epoch"] == 2  # written once, by rank 0
