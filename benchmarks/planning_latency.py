"""Planning latency: our cached CEM vs the official recompute-the-prefix CEM, on the same weights and numbers.

    python benchmarks/planning_latency.py                       # random ac-tiny weights (CPU demo scale)
    python benchmarks/planning_latency.py --checkpoint ac.pt    # weights of an AC-training checkpoint
    python benchmarks/planning_latency.py --preset ac-droid-256px-8f --samples 16 --repeats 1   # ViT-g scale
    python benchmarks/planning_latency.py --official-repo ~/vjepa2   # baseline = the official code itself

Both planners get the same encoder/predictor weights, context and goal latents, state, samples, top-k,
iterations, horizon and seed. The baseline (planning/official_cem.py) re-runs the predictor over the whole
trajectory at every horizon step and integrates poses with scipy one sample at a time, drawing its random
numbers from the global RNG. With ``--official-repo`` the baseline is the official planner code itself
(``notebooks/utils/world_model_wrapper.py`` and ``mpc_utils.cem`` of a facebookresearch/vjepa2 checkout, with
its own ``vit_ac_predictor`` loading our state dict; needs that checkout's requirements, e.g. timm). Ours
(planning.cem) rolls every candidate out with the KV-cached ``forward_next`` and integrates poses in torch,
drawing the same numbers from a local generator. The energies
of every candidate in every iteration must agree to 1e-4. Plans can still differ where the k-th and (k+1)-th
candidates tie within float rounding (e.g. candidates clipped to the same box corner, or converged energies):
a swap changes the elite mean, not the energies. Prints two tables: latency per planned action (MPC executes
one action per plan) and rollout time versus horizon.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from planning import official_cem

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planning.cem import CEMConfig, CEMPlanner
from planning.common import ActionSpace
from vjepa_ac import ac_train, runtime
from vjepa_ac.checkpoint import load_checkpoint
from vjepa_ac.runtime import VJEPAWorldModel


def build_world_model(args) -> tuple[VJEPAWorldModel, dict]:
    """The world model and its predictor's ``vit_ac_predictor`` keyword arguments (official names)."""
    if args.checkpoint:
        wm = VJEPAWorldModel.from_checkpoint(args.checkpoint)
        return wm, load_checkpoint(args.checkpoint, required=("config",))["config"]["predictor"]
    torch.manual_seed(args.seed)
    cfg = ac_train.load_ac_config(args.preset)
    encoder = runtime.build_encoder(ac_train.encoder_spec(cfg))
    spec = ac_train.predictor_spec(cfg, encoder.embed_dim)
    wm = VJEPAWorldModel(encoder, runtime.build_predictor(spec), normalize_reps=cfg.loss.normalize_reps,
                         img_size=cfg.model.img_size, tubelet_size=cfg.model.tubelet_size)
    return wm, spec


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="AC-training checkpoint (default: random weights of --preset)")
    parser.add_argument("--preset", default="ac-tiny", help="vjepa_ac/configs preset for random weights")
    parser.add_argument("--samples", type=int, default=400, help="CEM samples (official WorldModel default 400)")
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=10, help="CEM iterations (official default 10)")
    parser.add_argument("--horizons", type=int, nargs="+", default=[2, 4, 8],
                        help="CEM planning horizons to compare (official default 2)")
    parser.add_argument("--max-horizon", type=int, default=8, help="rollout table covers horizons 1..this")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (the median is reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max allowed energy difference")
    parser.add_argument("--official-repo", help="facebookresearch/vjepa2 checkout: time its planner code instead "
                        "of planning/official_cem.py")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    official = official_cem

    wm, predictor_spec = build_world_model(args)
    rng = np.random.default_rng(args.seed)
    size = wm.img_size
    context = wm.encode(rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8))
    goal = wm.encode(rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8))
    state = torch.tensor([[0.45, 0.05, 0.30, 3.10, -0.10, 0.20, 0.0]])
    tokens = context.shape[1]
    upstream = None
    if args.official_repo:
        upstream = official.OfficialPlanner(args.official_repo, wm.predictor.state_dict(), predictor_spec, tokens)
    step = official.prefix_step(upstream.predictor if upstream else wm.predictor, tokens, wm.normalize_reps)
    n_params = sum(p.numel() for p in wm.predictor.parameters())
    print(f"world model: encoder {type(wm.encoder).__name__} D={context.shape[-1]}, {tokens} tokens/frame, "
          f"predictor {n_params / 1e6:.2f}M params; threads={args.threads}; baseline: "
          f"{'official code at ' + args.official_repo if upstream else 'planning/official_cem.py'}")

    # --- CEM: same seed, same numbers --------------------------------------------------------------------------
    print(f"\nCEM latency per planned action (samples={args.samples}, top-k={args.topk}, "
          f"iterations={args.iterations}, median of {args.repeats}; MPC executes one action per plan)")
    print("| horizon | official prefix CEM (s) | planning.cem (s) | speed-up | max energy diff | max plan diff |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for horizon in args.horizons:
        def run_official(horizon=horizon):
            record = []
            torch.manual_seed(args.seed)
            if upstream is not None:
                plan = upstream.plan(context, state, goal, rollout=horizon, samples=args.samples, topk=args.topk,
                                     cem_steps=args.iterations, maxnorm=0.05, record=record)
                return plan, torch.stack(record)  # infer_next_action returns [rollout, 7]
            plan = official.official_cem(context[:, None], state[:, None], goal[:, None], step, rollout=horizon,
                                         cem_steps=args.iterations, samples=args.samples, topk=args.topk,
                                         maxnorm=0.05, record=record)
            return plan[0], torch.stack(record)

        cfg = CEMConfig(horizon=horizon, samples=args.samples, topk=args.topk, iterations=args.iterations,
                        action_space=ActionSpace(maxnorm=0.05), seed=args.seed)

        def run_ours(cfg=cfg):
            result = CEMPlanner(cfg).plan(wm, context, state, goal)
            return result.actions, result.energies

        with torch.no_grad():
            (ref_plan, ref_energies), ref_times = timed(run_official, args.repeats)
            (our_plan, our_energies), our_times = timed(run_ours, args.repeats)
        # every candidate of every iteration (energies of identical samples, as both draw the same numbers)
        energy_diff = float((ref_energies - our_energies).abs().max())
        plan_diff = float((ref_plan - our_plan).abs().max())
        worst = max(worst, energy_diff)
        t_ref, t_ours = statistics.median(ref_times), statistics.median(our_times)
        print(f"| {horizon} | {t_ref:.3f} | {t_ours:.3f} | {t_ref / t_ours:.1f}x | {energy_diff:.1e} "
              f"| {plan_diff:.1e} |", flush=True)

    # --- rollout time vs horizon ---------------------------------------------------------------------------
    print(f"\nRollout of {args.samples} action sequences from one context (median of {args.repeats})")
    print("| horizon | official prefix (s) | cached (s) | speed-up |")
    print("|---|---|---|---|")
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for h in range(1, args.max_horizon + 1):
            actions = (torch.rand(args.samples, h, 7, generator=gen) - 0.5) * 0.1
            actions[..., 3:6] = 0

            def prefix(actions=actions):
                frames = context[:, None].expand(args.samples, -1, -1, -1)
                poses = state[:, None].expand(args.samples, -1, -1)
                for t in range(actions.shape[1]):
                    nxt, pose = step(frames, actions[:, : t + 1], poses)
                    frames, poses = torch.cat([frames, nxt], 1), torch.cat([poses, pose], 1)
                return frames[:, 1:]

            ref, ref_t = timed(prefix, args.repeats)
            ours, our_t = timed(lambda actions=actions: wm.rollout(context, state, actions), args.repeats)
            if float((ref - ours).abs().max()) > args.tolerance:
                raise SystemExit(f"rollout mismatch at horizon {h}: {float((ref - ours).abs().max()):.2e}")
            a, b = statistics.median(ref_t), statistics.median(our_t)
            print(f"| {h} | {a:.3f} | {b:.3f} | {a / b:.1f}x |", flush=True)

    if worst > args.tolerance:
        raise SystemExit(f"energies differ by {worst:.2e} > {args.tolerance}")


if __name__ == "__main__":
    main()
