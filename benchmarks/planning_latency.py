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

Both tables also print the *matrix-product floor*: the time of the GEMMs of our rollout alone (every
``nn.Linear`` of the predictor at the token counts the rollout feeds it, and the two attention products per
layer over the cached keys), run back to back on preallocated tensors in the same process, and the share of
it reached (floor / measured time; 100 % = nothing but the unavoidable products). By default times are
process CPU time (``--clock cpu``; with one thread this is robust on a shared machine); ``--clock wall``
measures elapsed time.
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


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = clock()
        out = fn()
        times.append(clock() - start)
    return out, times


def rollout_gemms(wm: VJEPAWorldModel, samples: int, horizon: int, tokens: int) -> list[tuple]:
    """The matrix products of ``wm.rollout`` for `samples` sequences of `horizon` steps, as ``(kind, shapes)``.

    Chunks as the rollout splits the samples; per chunk and step: the embedding of the frame (once, batch 1,
    for the shared context frame), the action/state encoders, every Linear of every block over the frame's
    tokens, the attention products q k^T and p v per layer over the keys cached so far, and the read-out.
    """
    pred = wm.predictor
    chunk = wm._chunk_size(samples, tokens)
    per_frame = tokens + pred.cond_tokens
    heads, head_dim = pred.num_heads, pred.predictor_embed_dim // pred.num_heads
    gemms = []
    for start in range(0, samples, chunk):
        b = min(chunk, samples - start)
        for k in range(horizon):
            embedded = tokens if k == 0 else b * tokens  # the shared context frame is embedded once
            gemms.append(("mm", embedded, pred.predictor_embed.in_features, pred.predictor_embed.out_features))
            for enc in (pred.action_encoder, pred.state_encoder):
                gemms.append(("mm", b, enc.in_features, enc.out_features))
            keys = per_frame * (k + 1)
            for blk in pred.predictor_blocks:
                for layer in blk.modules():
                    if isinstance(layer, torch.nn.Linear):
                        gemms.append(("mm", b * per_frame, layer.in_features, layer.out_features))
                gemms.append(("bmm", b * heads, per_frame, head_dim, keys))  # q k^T
                gemms.append(("bmm", b * heads, per_frame, keys, head_dim))  # softmax(.) v
            gemms.append(("mm", b * tokens, pred.predictor_proj.in_features, pred.predictor_proj.out_features))
    return gemms


def gemm_floor(gemms: list[tuple], repeats: int) -> float:
    """Median time of running `gemms` back to back on preallocated float32 tensors (``out=``, no allocation)."""
    ops = []
    for kind, *dims in gemms:
        if kind == "mm":
            m, k, n = dims
            a, w, out = torch.randn(m, k), torch.randn(n, k), torch.empty(m, n)
            ops.append((torch.mm, a, w.t(), out))  # F.linear multiplies by the transposed weight
        else:
            batch, m, k, n = dims
            ops.append((torch.bmm, torch.randn(batch, m, k), torch.randn(batch, k, n), torch.empty(batch, m, n)))

    def run():
        for fn, a, b, out in ops:
            fn(a, b, out=out)

    run()  # warm-up
    return statistics.median(timed(run, repeats)[1])


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
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: process CPU time (robust on a shared machine with --threads 1); wall: elapsed")
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
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
          f"{'official code at ' + args.official_repo if upstream else 'planning/official_cem.py'}; "
          f"clock: {args.clock}")

    # --- CEM: same seed, same numbers --------------------------------------------------------------------------
    print(f"\nCEM latency per planned action (samples={args.samples}, top-k={args.topk}, "
          f"iterations={args.iterations}, median of {args.repeats}; MPC executes one action per plan)")
    print("| horizon | official prefix CEM (s) | planning.cem (s) | speed-up | GEMM floor (s) | share of floor "
          "| max energy diff | max plan diff |")
    print("|---|---|---|---|---|---|---|---|")
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
        floor = args.iterations * gemm_floor(rollout_gemms(wm, args.samples, horizon, tokens), args.repeats)
        print(f"| {horizon} | {t_ref:.3f} | {t_ours:.3f} | {t_ref / t_ours:.1f}x | {floor:.3f} | "
              f"{100 * floor / t_ours:.0f} % | {energy_diff:.1e} | {plan_diff:.1e} |", flush=True)

    # --- rollout time vs horizon ---------------------------------------------------------------------------
    print(f"\nRollout of {args.samples} action sequences from one context (median of {args.repeats})")
    print("| horizon | official prefix (s) | cached (s) | speed-up | GEMM floor (s) | share of floor |")
    print("|---|---|---|---|---|---|")
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
            floor = gemm_floor(rollout_gemms(wm, args.samples, h, tokens), args.repeats)
            print(f"| {h} | {a:.3f} | {b:.3f} | {a / b:.1f}x | {floor:.3f} | {100 * floor / b:.0f} % |", flush=True)

    if worst > args.tolerance:
        raise SystemExit(f"energies differ by {worst:.2e} > {args.tolerance}")


if __name__ == "__main__":
    main()
