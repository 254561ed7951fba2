"""Run by test_fsdp.py under `torchrun --nproc_per_node=2` (gloo, CPU): pretraining with run.parallel=fsdp.

1. a few trainer steps on one fixed global batch split over the ranks: losses and gathered weights to
   OUT/fsdp_steps.pt;
2. the train() loop for 2 epochs into OUT/straight, and the same run into OUT/resumed killed right after its
   first checkpoint (epoch 1, sharded) and started again (it resumes from latest.dcp).
"""
import sys

import torch

from tests.pretrain.conftest import tiny_config
from tests.pretrain.test_fsdp import fixed_steps
from vjepa_ac import distributed
from vjepa_ac.pretrain import JEPATrainer, train
from vjepa_ac.sharding import full_model_state

torch.set_num_threads(1)
out = sys.argv[1]
info = distributed.init_distributed("cpu")
losses, trainer = fixed_steps(info.rank, info.world_size, parallel="fsdp")
weights = {"encoder": full_model_state(trainer.encoder), "target": full_model_state(trainer.ema.target)}
if info.is_main:
    torch.save({"losses": losses, **weights}, f"{out}/fsdp_steps.pt")
cfg = {"epochs": 2, "steps_per_epoch": 2, "parallel": "fsdp", "device": "cpu", "log_every": 1}
train(tiny_config(out=f"{out}/straight", **cfg))


class Crash(Exception):
    pass


real_save = JEPATrainer.save_checkpoint


def save_then_crash(self, path, epoch):  # the run dies right after its first (sharded) checkpoint
    real_save(self, path, epoch)
    raise Crash


JEPATrainer.save_checkpoint = save_then_crash
try:
    train(tiny_config(out=f"{out}/resumed", **cfg))
except Crash:
    pass
JEPATrainer.save_checkpoint = real_save
train(tiny_config(out=f"{out}/resumed", **cfg))  # resumes from latest.dcp at step 2
distributed.cleanup()
