"""Time to goal: wall time per *solved* episode, official CEM defaults vs the package's tuned CEM, same episodes.

    python benchmarks/time_to_goal.py                                   # ORACLE world model, FrankaReach-v0
    python benchmarks/time_to_goal.py --checkpoint runs/demo/ac/latest.pt --episodes 10   # a trained AC model

Latency per plan is what the planner costs; what a robot user feels is how long it takes to *reach* the goal.
Both planners run the same episodes (env seeds SEED, SEED+1, ..., interleaved episode by episode so load on a
shared machine hits both alike) with MPC executing one action per plan:

* ``official``: the official V-JEPA 2-AC defaults (``CEMConfig()``: 400 samples x 10 iterations, horizon 2,
  cold start every step);
* ``tuned``: the same CEM with a warm start (the previous plan, shifted), fewer iterations
  (``--tuned-iterations``) and the early exit (``--tuned-stop-std``: stop once every xyz sampling std is
  below it).

Seconds per solved episode = total time of all episodes (reset, encoding, planning, simulation) / episodes
solved. The table prints wall and process-CPU seconds (``--threads 1``: CPU time is robust on a shared
machine); the success counts show whether the tuned planner keeps the official success. With the default
``--world-model oracle`` the planner plans on true end-effector positions (ORACLE mode: it proves the
loop's cost, not a learned model's); with ``--checkpoint`` it plans from images with that AC model.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gymnasium as gym
import torch

import envs  # noqa: F401  (registers the Franka tasks)
from planning.cem import CEMConfig, CEMPlanner
from planning.mpc import MPC, run_episode


def build_mpcs(args) -> dict[str, MPC]:
    """The two planners on one world model (ORACLE or the checkpoint's)."""
    if args.checkpoint:
        from vjepa_ac.runtime import VJEPAWorldModel

        world_model, oracle = VJEPAWorldModel.from_checkpoint(args.checkpoint), False
    else:
        from planning.world_model import OracleWorldModel

        world_model, oracle = OracleWorldModel(), True
    configs = {
        "official": CEMConfig(horizon=args.horizon),
        "tuned": CEMConfig(horizon=args.horizon, samples=args.tuned_samples, iterations=args.tuned_iterations,
                           warm_start=True, stop_std=args.tuned_stop_std),
    }
    return {name: MPC(world_model, CEMPlanner(cfg), execute=1, oracle=oracle) for name, cfg in configs.items()}


def count_iterations(planner: CEMPlanner, counts: list[int]) -> None:
    """Record how many CEM iterations every plan ran (fewer than configured when the early exit fires)."""
    plan = planner.plan

    def counted(*args, **kwargs):
        result = plan(*args, **kwargs)
        counts.append(result.energies.shape[0])
        return result

    planner.plan = counted


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="AC checkpoint: plan from images with it (default: ORACLE world model)")
    parser.add_argument("--task", default="FrankaReach-v0")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="episode i uses env seed SEED+i")
    parser.add_argument("--max-steps", type=int, default=None, help="env steps per episode (default: the task's)")
    parser.add_argument("--horizon", type=int, default=2, help="planning horizon of both planners (official: 2)")
    parser.add_argument("--tuned-samples", type=int, default=400, help="tuned CEM: samples per iteration")
    parser.add_argument("--tuned-iterations", type=int, default=4, help="tuned CEM: at most this many iterations")
    parser.add_argument("--tuned-stop-std", type=float, default=0.01,
                        help="tuned CEM: early exit once every xyz sampling std is below this (m)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes: expected an integer >= 1, got {args.episodes}")
    torch.set_num_threads(args.threads)

    mpcs = build_mpcs(args)
    env = gym.make(args.task)
    stats = {name: {"success": 0, "wall": 0.0, "cpu": 0.0, "plan": 0.0, "actions": 0, "iterations": []}
             for name in mpcs}
    for name, mpc in mpcs.items():
        count_iterations(mpc.planner, stats[name]["iterations"])
    for i in range(args.episodes):
        for name, mpc in mpcs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            result = run_episode(env, mpc, seed=args.seed + i, max_steps=args.max_steps)
            s = stats[name]
            s["wall"] += time.perf_counter() - wall
            s["cpu"] += time.process_time() - cpu
            s["success"] += result.success
            s["plan"] += sum(result.plan_seconds)
            s["actions"] += len(result.actions)
            print(f"episode {i} {name}: success={result.success} steps={result.steps}", flush=True)
    env.close()

    mode = f"checkpoint {args.checkpoint}" if args.checkpoint else "ORACLE world model (true EE positions)"
    print(f"\nTime to goal on {args.task}, {mode}, {args.episodes} episodes (seeds {args.seed}..), "
          f"threads={args.threads}; tuned = warm start, <= {args.tuned_iterations} iterations x "
          f"{args.tuned_samples} samples, early exit at xyz std < {args.tuned_stop_std} m")
    print("| planner | success / episodes | CEM iterations per plan | planning s/action (wall) | steps per episode "
          "| s per episode (wall) | s per solved episode (wall) | s per solved episode (CPU) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, s in stats.items():
        solved = s["success"]
        per_solved = (lambda t, n=solved: f"{t / n:.2f}") if solved else (lambda t: "-")
        label = "official (400 x 10, H 2)" if name == "official" else "tuned (warm, early exit)"
        iterations = sum(s["iterations"]) / max(len(s["iterations"]), 1)
        print(f"| {label} | {solved}/{args.episodes} | {iterations:.1f} | {s['plan'] / max(s['actions'], 1):.3f} "
              f"| {s['actions'] / args.episodes:.1f} | {s['wall'] / args.episodes:.2f} | {per_solved(s['wall'])} "
              f"| {per_solved(s['cpu'])} |")
    official, tuned = stats["official"], stats["tuned"]
    if official["success"] and tuned["success"]:
        ratio = (official["wall"] / official["success"]) / (tuned["wall"] / tuned["success"])
        print(f"\ntuned vs official, wall time per solved episode: {ratio:.1f}x faster"
              f"{'' if tuned['success'] >= official['success'] else ' (but fewer episodes solved)'}")


if __name__ == "__main__":
    main()
