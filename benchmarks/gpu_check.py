#!/usr/bin/env python
"""One-call GPU check: what a CUDA machine must show before a long run, in one table (a few minutes).

    python benchmarks/gpu_check.py                        # on a CUDA machine: ViT-g sizes
    python benchmarks/gpu_check.py --dry-run              # any machine: tiny sizes on the CPU (proves the code path)

Rows:
1. the CUDA tests: ``pytest -m cuda`` (tests marked ``cuda``; none is collected when the suite has none);
2. bf16 autocast vs float32: the ViT-g encoder and AC predictor (random weights) on the same input, max
   absolute and relative differences of the outputs and their cosine similarity;
3. the SDPA backend: for the encoder's attention (no mask) and the AC predictor's (block-causal bool mask), the
   first backend, in the dispatcher's order (flash, cuDNN, memory-efficient, math), that accepts the call;
4. ViT-g AC planning seconds per action: ``planning.cem`` with 800 samples x 10 iterations (top-k 10, horizon 1,
   the paper's numbers; 16 s per action on an RTX 4090 there) on 256 px frames, bf16 autocast;
5. AC training steps/s on ViT-g features (batch 8, 8 frames of 256 tokens x 1408, predictor 1024 x 24,
   activation checkpointing, bf16 autocast: the official per-GPU setting);
6. one DDP training step in a 1-process NCCL group.
Without CUDA (and without ``--dry-run``) it exits with code 2 and says so.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planning.cem import CEMConfig, CEMPlanner
from planning.common import ActionSpace
from vjepa_ac.ac_train import ACObjective
from vjepa_ac.models import vit_ac_predictor, vit_giant_xformers, vit_tiny
from vjepa_ac.runtime import VJEPAWorldModel

# (encoder factory, predictor width, depth, heads, image size, AC batch, AC frames, planning samples, iterations)
FULL = {"encoder": vit_giant_xformers, "pred": (1024, 24, 16), "img": 256, "batch": 8, "frames": 8, "samples": 800, "iterations": 10}
TINY = {"encoder": vit_tiny, "pred": (64, 2, 4), "img": 64, "batch": 2, "frames": 3, "samples": 16, "iterations": 2}


def build(size: dict, device):
    encoder = size["encoder"](img_size=size["img"], num_frames=2, use_rope=True).to(device).eval()
    width, depth, heads = size["pred"]
    predictor = vit_ac_predictor(img_size=size["img"], num_frames=2 * size["frames"], embed_dim=encoder.embed_dim,
                                 predictor_embed_dim=width, depth=depth, num_heads=heads, use_rope=True,
                                 use_activation_checkpointing=True).to(device)
    return encoder, predictor


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def autocast(device, on: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if on else contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------------------- rows


def cuda_tests(dry_run: bool) -> str:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests", "-p", "no:cacheprovider"]
    if dry_run:
        return f"skipped in --dry-run ({' '.join(cmd[2:])})"
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    # exit code 5: nothing collected (the suite has no test marked cuda)
    return {0: f"passed: {last}", 5: f"none marked cuda: {last}"}.get(proc.returncode, f"FAILED: {last}")


@torch.no_grad()
def bf16_parity(encoder, predictor, size, device) -> str:
    torch.manual_seed(0)
    frames = torch.randn(2, 3, 2, size["img"], size["img"], device=device)
    inputs = ac_inputs(encoder, size, 2, device)
    rows = []
    for name, run in (("encoder", lambda: encoder(frames)), ("predictor", lambda: predictor.eval()(*inputs))):
        ref = run().float()
        with autocast(device, True):
            low = run().float()
        diff = (low - ref).abs()
        cos = F.cosine_similarity(low.flatten(), ref.flatten(), dim=0)
        rows.append(f"{name}: max abs {diff.max():.2e}, max rel {(diff.max() / ref.abs().max()):.2e}, cos {cos:.6f}")
    return "; ".join(rows)


def ac_inputs(encoder, size, batch, device):
    tokens = (size["img"] // 16) ** 2
    t = size["frames"]
    return (torch.randn(batch, t * tokens, encoder.embed_dim, device=device), torch.randn(batch, t, 7, device=device),
            torch.randn(batch, t, 7, device=device))


def sdpa_backend(encoder, predictor, size, device) -> str:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    order = [SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    heads_enc = encoder.blocks[0].attn.num_heads
    d_enc = encoder.embed_dim // heads_enc
    width, _, heads = size["pred"]
    tokens = (size["img"] // 16) ** 2
    per_frame = tokens + 2
    mask = (torch.arange(size["frames"] * per_frame, device=device) // per_frame)
    mask = mask[:, None] >= mask[None, :]
    cases = {"encoder (no mask)": ((1, heads_enc, tokens, d_enc), None),
             "AC predictor (bool mask)": ((1, heads, size["frames"] * per_frame, width // heads), mask)}
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    out = []
    for name, (shape, attn_mask) in cases.items():
        q = torch.randn(shape, device=device, dtype=dtype)
        chosen = "none"
        for backend in order:
            try:
                with sdpa_kernel(backend):
                    F.scaled_dot_product_attention(q, q, q, attn_mask=attn_mask)
                chosen = backend.name
                break
            except RuntimeError:
                continue
        out.append(f"{name}: {chosen}")
    return "; ".join(out)


@torch.no_grad()
def planning_seconds(encoder, predictor, size, device) -> str:
    wm = VJEPAWorldModel(encoder, predictor, img_size=size["img"], amp_dtype=torch.bfloat16 if device.type == "cuda"
                         else None)
    rng = np.random.default_rng(0)
    context = wm.encode(rng.integers(0, 256, (1, size["img"], size["img"], 3), dtype=np.uint8)).to(device)
    goal = wm.encode(rng.integers(0, 256, (1, size["img"], size["img"], 3), dtype=np.uint8)).to(device)
    state = torch.tensor([[0.45, 0.05, 0.30, 3.10, -0.10, 0.20, 0.0]], device=device)
    cfg = CEMConfig(horizon=1, samples=size["samples"], topk=10 if size["samples"] >= 10 else 2,
                    iterations=size["iterations"], action_space=ActionSpace(maxnorm=0.05), seed=0)
    CEMPlanner(cfg).plan(wm, context, state, goal)  # warm-up (kernels, allocator)
    sync(device)
    t0 = time.perf_counter()
    CEMPlanner(cfg).plan(wm, context, state, goal)
    sync(device)
    return f"{time.perf_counter() - t0:.2f} s per action ({size['samples']} samples x {size['iterations']} iterations)"


def ac_train_steps(encoder, predictor, size, device, steps: int = 5) -> str:
    predictor.train().requires_grad_(True)  # the planning world model froze it
    predictor.extrinsics_encoder.requires_grad_(False)  # unused, as in AC training
    objective = ACObjective(predictor, auto_steps=2, loss_exp=1.0, normalize_reps=True)
    optimizer = torch.optim.AdamW([p for p in predictor.parameters() if p.requires_grad], lr=1e-4)
    tokens = (size["img"] // 16) ** 2
    b, t = size["batch"], size["frames"]
    h = F.layer_norm(torch.randn(b, t, tokens, encoder.embed_dim, device=device), (encoder.embed_dim,))
    actions, states = torch.randn(b, t - 1, 7, device=device) * 0.01, torch.randn(b, t, 7, device=device)
    times = []
    for i in range(steps + 1):  # the first step warms up
        sync(device)
        t0 = time.perf_counter()
        with autocast(device, device.type == "cuda"):
            loss = objective(h, actions, states)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        if i:
            times.append(time.perf_counter() - t0)
    peak = f", peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if device.type == "cuda" else ""
    return f"{1 / float(np.median(times)):.2f} steps/s (batch {b}, {t} frames, loss {loss.item():.3f}{peak})"


def ddp_step(device) -> str:
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group(backend, rank=0, world_size=1)
    try:
        model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.GELU(), torch.nn.Linear(256, 1)).to(device)
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index or 0]
                                                        if device.type == "cuda" else None)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        x = torch.randn(64, 256, device=device)
        before = model[0].weight.detach().clone()
        t0 = time.perf_counter()
        ddp(x).square().mean().backward()
        opt.step()
        sync(device)
        moved = not torch.equal(before, model[0].weight)
        return f"{backend} world 1: step {'ok' if moved else 'DID NOT UPDATE'} in {time.perf_counter() - t0:.3f} s"
    finally:
        dist.destroy_process_group()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: checks the code path, no GPU figures")
    args = p.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device (torch {torch.__version__}, cuda build {torch.version.cuda}); run it on a "
              "CUDA machine, or with --dry-run for the tiny CPU code path", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    size = TINY if args.dry_run else FULL
    name = "CPU (dry run, tiny sizes)" if args.dry_run else torch.cuda.get_device_name(device)
    print(f"gpu_check on {name}; torch {torch.__version__}, cuda {torch.version.cuda}", flush=True)
    torch.manual_seed(0)
    encoder, predictor = build(size, device)
    rows = []
    for label, fn in (("CUDA tests", lambda: cuda_tests(args.dry_run)),
                      ("bf16 autocast vs fp32", lambda: bf16_parity(encoder, predictor, size, device)),
                      ("SDPA backend", lambda: sdpa_backend(encoder, predictor, size, device)),
                      ("AC planning", lambda: planning_seconds(encoder, predictor, size, device)),
                      ("AC training", lambda: ac_train_steps(encoder, predictor, size, device)),
                      ("DDP step", lambda: ddp_step(device))):
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 -- a failing row is reported in the table (exit 1); the others still run
            result = f"FAILED: {type(e).__name__}: {e}".splitlines()[0][:300]
        rows.append((label, result, time.perf_counter() - t0))
        print(f"  {label}: done in {rows[-1][2]:.0f} s", flush=True)
    print("\n| check | result | s |\n|---|---|---|")
    for label, result, seconds in rows:
        print(f"| {label} | {result} | {seconds:.0f} |")
    return 1 if any(r.startswith("FAILED") for _, r, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
