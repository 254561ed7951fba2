"""Data parallelism for the trainers: DDP (every rank holds all weights) or FSDP2 (weights, gradients and
optimizer state sharded over the ranks, ``torch.distributed.fsdp.fully_shard``), and sharded checkpoints.

With FSDP2 every transformer block is one shard unit (its parameters are all-gathered just before it runs and
freed after), then the root module holds the rest. The AC predictor is also run block by block through its
KV-cached ``forward_next`` / ``forward_cached`` (the rollout term and evaluation), so those methods are registered
with FSDP too (``register_fsdp_forward_method``) and gather their parameters like ``forward``.

A sharded checkpoint is a ``torch.distributed.checkpoint`` folder ``<name>.dcp``: each rank writes its own shards
of the model and optimizer state (plain tensors, loaded without unpickling code), and any number of ranks can
load it (DCP reshards). It is written to ``<name>.dcp.partial`` by all ranks and renamed by rank 0 after a
barrier, so a crash leaves the previous folder whole.
"""
from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from vjepa_ac.distributed import DistInfo, barrier

PARALLEL_MODES = ("ddp", "fsdp")


def is_sharded(params: Iterable[torch.Tensor]) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in params)


def shard(root: nn.Module, blocks: Sequence[nn.Module], dist_info: DistInfo,
          forward_methods: Sequence[tuple[nn.Module, str]] = ()) -> nn.Module:
    """``fully_shard`` each of ``blocks``, then ``root``, after copying rank 0's weights to every rank;
    ``forward_methods`` are extra (module, method name) entry points that must gather parameters like
    ``forward``. Returns ``root`` (sharded in place)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    mesh = init_device_mesh(dist_info.device.type, (dist_info.world_size,))
    with torch.no_grad():  # start every rank from rank 0's weights, as DDP does when it wraps a module
        for t in [*root.parameters(), *root.buffers()]:
            dist.broadcast(t, src=0)
    for block in blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(root, mesh=mesh)
    for module, name in forward_methods:
        register_fsdp_forward_method(module, name)
    return root


def local(t: torch.Tensor) -> torch.Tensor:
    """The rank's own shard of a DTensor (the tensor itself otherwise)."""
    return t.to_local() if hasattr(t, "to_local") else t


@torch.no_grad()
def global_norm(params: Sequence[torch.Tensor]) -> float:
    """L2 norm of all ``params`` together; sharded (DTensor) parameters are summed over their ranks, so every
    rank gets the same value (and so takes the same decision on it)."""
    if not params:
        return 0.0
    sharded = is_sharded(params)
    norms = torch._foreach_norm([local(p).detach() for p in params])
    squares = torch.stack([n.float() for n in norms]).square().sum()
    if sharded and dist.is_initialized():
        dist.all_reduce(squares)
    return math.sqrt(float(squares))


def all_ranks_any(flag: bool) -> bool:
    """True on every rank when ``flag`` is True on any rank (the flag itself when not distributed)."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor(int(flag), device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t)


def scalar(value: torch.Tensor) -> float:
    """float() of a (possibly replicated DTensor) scalar, e.g. what ``clip_grad_norm_`` returns under FSDP."""
    return float(value.full_tensor() if hasattr(value, "full_tensor") else value)


# ----------------------------------------------------------------------------------------------------------
# sharded checkpoints


def dcp_path(path: str | os.PathLike) -> Path:
    """``runs/x/latest.pt`` -> ``runs/x/latest.dcp`` (the sharded companion of a checkpoint file)."""
    return Path(path).with_suffix(".dcp")


def save_sharded(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer,
                 counters: dict[str, int], dist_info: DistInfo, extra: dict[str, nn.Module] | None = None) -> Path:
    """Every rank writes its shards of ``model``, ``optimizer`` and the ``extra`` modules (e.g. an EMA target),
    plus integer ``counters`` (step, epoch), into ``dcp_path(path)``."""
    import torch.distributed.checkpoint as dcp

    folder = dcp_path(path)
    partial = folder.with_name(folder.name + ".partial")
    if dist_info.is_main and partial.exists():
        shutil.rmtree(partial)  # a crashed earlier save
    barrier()
    dcp.save(_state(model, optimizer, counters, extra), checkpoint_id=str(partial))
    barrier()
    if dist_info.is_main:
        if folder.exists():
            old = folder.with_name(folder.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
            os.replace(partial, folder)
            shutil.rmtree(old)
        else:
            os.replace(partial, folder)
    barrier()
    return folder


def load_sharded(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer,
                 counters: Sequence[str], extra: dict[str, nn.Module] | None = None) -> dict[str, int]:
    """Load ``dcp_path(path)`` into the (sharded) ``model``, ``optimizer`` and ``extra`` modules on every rank
    (any number of ranks: DCP reshards); returns the ``counters`` named."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import DefaultLoadPlanner, FileSystemReader
    from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_state_dict

    folder = dcp_path(path)
    state = _state(model, optimizer, dict.fromkeys(counters, 0), extra)
    # Every weight and counter must be in the folder. Optimizer entries may be absent: parameters that never had
    # a gradient (e.g. an unused mask token) have no AdamW state, while the template made here has one for all.
    stored = set(FileSystemReader(str(folder)).read_metadata().state_dict_metadata)
    needed = [f"{group}.{key}" for group in ("model", *(extra or {}), "counters") for key in state[group]]
    missing = [k for k in needed if k not in stored]
    if missing:
        raise KeyError(f"{folder}: sharded checkpoint lacks {len(missing)} entries this run needs, e.g. "
                       f"{missing[:3]} (a different model or config?)")
    dcp.load(state, checkpoint_id=str(folder), planner=DefaultLoadPlanner(allow_partial_load=True))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["opt"])
    for name, module in (extra or {}).items():
        set_model_state_dict(module, state[name])
    return {name: int(state["counters"][name]) for name in counters}


def _state(model, optimizer, counters: dict[str, int], extra: dict[str, nn.Module] | None) -> dict:
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "opt": optim_state,
             "counters": {k: torch.tensor(v) for k, v in counters.items()}}
    for name, module in (extra or {}).items():
        state[name] = get_model_state_dict(module)
    return state


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole (unsharded) state dict on CPU, on rank 0 (every rank must call; others get an empty dict)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
