"""Full-size dry run: what the real V-JEPA 2-AC model needs on this machine, before downloading 4 GB.

With random weights, the released architecture (default ``--arch vjepa2-ac-vitg``: the ViT-g/16 encoder,
``vit_giant_xformers`` at 256 px, and the 300M-parameter AC predictor) plans one action in the simulator
(``FrankaReach-v0`` rendered at the encoder's resolution) exactly as ``vjepa-evaluate`` would with the
downloaded file: encode the goal image, encode the current frame, CEM over predictor rollouts, execute the
first action. The sample count is reduced (``--samples``, ``--iterations``, ``--horizon``) so a CPU finishes
in minutes; planning time grows about linearly with samples x iterations (x horizon). Prints one table:
parameter counts, weight memory, peak resident memory after each stage, and seconds per stage.

    python benchmarks/full_size_dry_run.py                            # ViT-g + AC predictor, float32, CPU
    python benchmarks/full_size_dry_run.py --samples 16 --iterations 2 --horizon 2 --threads 2
    python benchmarks/full_size_dry_run.py --dtype bfloat16           # weights and compute in bf16
    python benchmarks/full_size_dry_run.py --arch-config tiny.yaml    # any architecture (official kwargs)

Random weights plan nonsense; the timings and memory are those of the real model (same shapes, same code).
Measured figures: docs/checkpoints.md, "What the full-size model needs".
"""
from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time

import numpy as np
import torch

from vjepa_ac.cli import ArgumentParser, check_device, need, run_cli

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(prog="full_size_dry_run", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="vjepa2-ac-vitg",
                   help="released AC model whose architecture is built (hub or file name; default: %(default)s)")
    p.add_argument("--arch-config", default=None,
                   help="YAML/JSON of official constructor kwargs, sections 'encoder' and 'predictor' (instead of --arch)")
    p.add_argument("--samples", type=int, default=8, help="CEM samples per iteration (official: 800)")
    p.add_argument("--topk", type=int, default=4, help="CEM elites (official: 10)")
    p.add_argument("--iterations", type=int, default=1, help="CEM iterations (official: 10)")
    p.add_argument("--horizon", type=int, default=1, help="CEM planning horizon in steps (official: 1)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                   help="weights and compute (bfloat16 / float16 run under autocast); default: %(default)s")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--image-size", type=int, default=None,
                   help="rendered image side in pixels (default: the encoder's resolution, 256 for ViT-g)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, the episode and the planner")
    args = p.parse_args(argv)
    for flag in ("samples", "iterations", "horizon"):
        need(getattr(args, flag) >= 1, f"--{flag}", ">= 1", getattr(args, flag))
    need(2 <= args.topk <= args.samples, "--topk", f"2..--samples={args.samples}", args.topk)
    need(args.threads >= 0, "--threads", ">= 0", args.threads)
    need(args.image_size is None or args.image_size >= 16, "--image-size", "pixels >= 16", args.image_size)
    check_device(args.device)
    return args


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (getrusage: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def tensor_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**28 else f"{n_bytes / 2**20:.1f} MiB"


def run(args: argparse.Namespace) -> tuple[list[tuple[str, str]], list[tuple[str, float, float, int]]]:
    """Build, encode, plan and act once; prints and returns (facts: (name, value), stages: (name, wall s,
    CPU s, peak RSS bytes after it))."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the tasks)
    from planning.cem import CEMConfig, CEMPlanner
    from vjepa_ac.formats import build_ac_architecture, official_runtime
    from vjepa_ac.runtime import VJEPAWorldModel

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype, stages = DTYPES[args.dtype], []
    imported = peak_rss_bytes()  # python, torch, MuJoCo

    @contextlib.contextmanager
    def stage(name):
        # CPU seconds beside wall seconds: on a shared machine the wall clock also counts other processes' turns
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        stages.append((name, time.perf_counter() - wall, time.process_time() - cpu, peak_rss_bytes()))
        print(f"[dry run] {name}: {stages[-1][1]:.1f} s wall, {stages[-1][2]:.1f} s CPU, peak RSS "
              f"{gib(stages[-1][3])}", flush=True)

    with stage("build random weights (a real run loads the file instead)"):
        torch.manual_seed(args.seed)
        encoder, predictor, description = build_ac_architecture(None if args.arch_config else args.arch,
                                                                args.arch_config)
        encoder, predictor = encoder.to(args.device, dtype), predictor.to(args.device, dtype)
        runtime = official_runtime(encoder)
        wm = VJEPAWorldModel(encoder, predictor, **runtime, amp_dtype=None if dtype == torch.float32 else dtype)
    env = gym.make("FrankaReach-v0", image_size=args.image_size or runtime["img_size"])
    obs, info = env.reset(seed=args.seed)
    planner = CEMPlanner(CEMConfig(horizon=args.horizon, samples=args.samples, topk=args.topk,
                                   iterations=args.iterations, seed=args.seed))
    planner.reset(args.seed)
    with stage("encode the goal image"):
        goal = wm.encode(info["goal_rgb"][None])
    with stage("encode the current frame"):
        context = wm.encode(obs["rgb"][None])
    with stage("CEM plan (predictor rollouts of every sample)"):
        plan = planner.plan(wm, context, torch.as_tensor(obs["state"], dtype=torch.float32)[None].to(wm.device),
                            goal)
    action = plan.actions[0].detach().cpu().numpy().astype(np.float32)  # [7], DROID's delta convention
    env.step(action)
    env.close()

    facts = [("architecture", description),
             ("encoder parameters", f"{sum(p.numel() for p in encoder.parameters()):,}"),
             ("predictor parameters", f"{sum(p.numel() for p in predictor.parameters()):,}"),
             (f"weights in memory ({args.dtype})", gib(tensor_bytes(encoder) + tensor_bytes(predictor))),
             ("encoder input", f"{runtime['img_size']} px, {runtime['tubelet_size']}-frame tubelet"),
             ("planner", (f"CEM, {args.samples} samples, top {args.topk}, {args.iterations} iteration(s), "
                          f"horizon {args.horizon}")),
             ("device / torch threads", f"{args.device} / {torch.get_num_threads()}"),
             ("executed action (xyz, metres)", np.array2string(action[:3], precision=4)),
             ("peak RSS", gib(peak_rss_bytes()))]
    print("\n| quantity | value |\n|---|---|")
    for name, value in facts:
        print(f"| {name} | {value} |")
    print("\n| stage | wall s | CPU s | peak RSS after |\n|---|---:|---:|---:|")
    print(f"| imports (python, torch, MuJoCo) | - | - | {gib(imported)} |")
    for name, wall, cpu, rss in stages:
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {gib(rss)} |")
    total = [sum(x) for x in zip(*(row[1:3] for row in stages))]
    print(f"| total (excluding imports) | {total[0]:.1f} | {total[1]:.1f} | {gib(peak_rss_bytes())} |")
    return facts, stages


def main(argv=None) -> int:
    def _main(argv: list[str]) -> int:
        run(parse_args(argv))
        return 0

    return run_cli(_main, argv)


if __name__ == "__main__":  # python -m vjepa_ac.dry_run
    raise SystemExit(main())
