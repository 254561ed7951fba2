"""End-to-end CPU demo: the world model plans. `make demo` runs it (about 20 minutes on 2 CPU cores).

Stages (each resumes when its output exists, so an interrupted run continues):
  1. collect   scripted FrankaReach-v0 episodes + workspace exploration, DROID raw layout  (envs.collect)
  2. pretrain  a tiny V-JEPA encoder on them (video mode), then a cooldown                  (vjepa_ac.pretrain)
  3. ac        the action-conditioned predictor on the frozen encoder                       (vjepa_ac.ac_train)
  4. head      a light end-effector head on frozen latents, from the recorded states        (vjepa_ac.state_head)
  5. landscape does the planning energy track the true distance? trained / untrained / pixels (planning.landscape)
  6. evaluate  closed-loop CEM from goal images (>= 30 episodes), beside a random policy and the scripted oracle;
               push / pick-and-place with the same model                                     (planning.evaluate)

The planner sees the current image and proprioceptive state and the goal image, never the goal pose; success is
measured by the simulator. Energy = latent L1 + head_weight * ||head(predicted latent) - head(goal latent)||.

    python scripts/demo.py                                  # the demo (preset demo-reach), results in runs/demo
    python scripts/demo.py --config demo-toy --out /tmp/t   # the 1-2 minute toy pipeline (also run by the tests)
    python scripts/demo.py --eval_episodes 50 --head_weight 20

Writes OUT/results.md and OUT/results.json (the tables printed at the end), OUT/eval/*/ (reports, videos,
energy-landscape plots), OUT/landscape.json and OUT/landscape.png.
"""
from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401  (registers the Franka tasks)
from envs.collect import collect_episodes, collect_exploration
from envs.policies import make_policy
from planning.cem import CEMConfig, CEMPlanner
from planning.common import ActionSpace
from planning.energy import LatentDistance, StateHeadEnergy
from planning.evaluate import evaluate, table_row
from planning.landscape import encode_all, goal_distance_correlation, pixel_latents, straight_path
from planning.mpc import MPC
from planning.policy_eval import UniformRandomPolicy, evaluate_policy
from vjepa_ac import runtime
from vjepa_ac.ac_train import load_ac_config
from vjepa_ac.ac_train import run as train_ac
from vjepa_ac.checkpoint import load_checkpoint
from vjepa_ac.config import deep_merge, finite_nonnegative, need, to_dict
from vjepa_ac.feature_cache import split_episodes
from vjepa_ac.pretrain import load_pretrain_config
from vjepa_ac.pretrain import train as pretrain
from vjepa_ac.runtime import VJEPAWorldModel, build_encoder
from vjepa_ac.state_head import (
    StateHead,
    fit_state_head,
    head_errors,
    load_state_head,
    predicted_latents,
    save_state_head,
    store_frames,
)

TASK_IDS = {"reach": "FrankaReach-v0", "push": "FrankaPush-v0", "pick_place": "FrankaPickPlace-v0"}


@dataclass
class DemoConfig:
    """The demo pipeline; presets vjepa_ac/configs/demo-reach.yaml (the demo) and demo-toy.yaml (tests)."""

    out: str = "runs/demo"  # output folder (every stage resumes from what it finds there)
    seed: int = 0  # seed of data collection, training and evaluation
    # torch threads. 1: the demo's ops are small; a second thread gains little on a free 2-core machine and, when
    # anything else runs, spin-waits (a 1 s fit took 55 s with 2 threads on a shared machine)
    threads: int = 1
    # 1. data
    episodes: int = 200  # scripted reach episodes (mixed oracle / noisy expert / random), 31 frames each
    explore_episodes: int = 100  # workspace-covering exploration episodes (envs.exploration), 31 frames each
    image_size: int = 64  # rendered image side, pixels
    # 2-3. stage presets (vjepa_ac/configs) and nested overrides of their fields
    pretrain: str = "demo-pretrain"  # pretraining preset
    cooldown: str = "demo-cooldown"  # cooldown preset
    ac: str = "ac-demo"  # AC-training preset
    pretrain_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {optim: {epochs: 1}}
    cooldown_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {data: {batch_size: 2}}
    ac_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {optim: {total_steps: 12}}
    # 4. state head
    head_steps: int = 1500  # optimiser steps of the end-effector head
    head_on_predictions: bool = True  # also train on the predictor's rollouts (what planning reads the head on)
    head_weight: float = 10.0  # energy = latent_weight * L1 + head_weight * metres between head estimates (0: L1 only)
    latent_weight: float = 1.0  # weight of the latent L1 in the energy
    energy_steps: str = "all"  # "all" predicted steps (sum) or "last" (official)
    # 5. landscape
    landscape_goals: int = 20  # goal frames of the energy-landscape correlation
    landscape_others: int = 60  # frames compared with each goal
    path_seeds: int = 5  # straight paths to the goal measured in the simulator
    # 6. planner and evaluation
    horizon: int = 2  # CEM planning horizon, steps
    samples: int = 100  # CEM samples per iteration
    topk: int = 10  # CEM elites
    iterations: int = 4  # CEM iterations per plan
    maxnorm: float = 0.05  # max xyz delta per coordinate and step, metres
    eval_episodes: int = 30  # closed-loop reach episodes
    baseline_episodes: int = 30  # episodes of the random and oracle baselines
    extra_tasks: list[str] = field(default_factory=lambda: ["push", "pick_place"])  # other tasks planned with the same model
    extra_episodes: int = 10  # episodes per extra task
    extra_max_steps: int | None = 40  # push / pick-and-place step budget (None: the task default, 60 / 80)
    videos: int = 2  # episodes saved as videos per task

    def __post_init__(self):  # checked here, so a bad value fails before the first stage starts
        for name in ("episodes", "threads", "landscape_goals", "landscape_others", "horizon", "samples", "iterations",
                     "eval_episodes"):
            need(getattr(self, name) >= 1, name, ">= 1", getattr(self, name))
        for name in ("explore_episodes", "head_steps", "path_seeds", "baseline_episodes", "extra_episodes", "videos"):
            need(getattr(self, name) >= 0, name, ">= 0", getattr(self, name))
        need(self.image_size >= 16, "image_size", "pixels >= 16", self.image_size)
        for name in ("head_weight", "latent_weight"):
            need(finite_nonnegative(getattr(self, name)), name, "finite and >= 0", getattr(self, name))
        need(self.energy_steps in ("all", "last"), "energy_steps", "'all' or 'last'", self.energy_steps)
        need(2 <= self.topk <= self.samples, "topk", f"2..samples={self.samples}", self.topk)
        need(math.isfinite(self.maxnorm) and self.maxnorm > 0, "maxnorm", "finite metres > 0", self.maxnorm)
        unknown = [task for task in self.extra_tasks if task not in TASK_IDS]
        need(not unknown, "extra_tasks", f"names among {sorted(TASK_IDS)}", self.extra_tasks)
        need(self.extra_max_steps is None or self.extra_max_steps >= 1, "extra_max_steps", "None or >= 1",
             self.extra_max_steps)


def log(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Timer:
    def __init__(self):
        self.stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        log(f"--- {name} ---")
        start = time.perf_counter()
        yield
        self.stages[name] = time.perf_counter() - start
        log(f"{name} done in {self.stages[name]:.0f} s")


# ---------------------------------------------------------------------------------------------------------------
# stages


def stage_collect(cfg: DemoConfig, out: Path) -> Path:
    """Episodes under OUT/data: reach/ (scripted task data) and explore/ (the whole workspace)."""
    data = out / "data"
    collect_episodes("reach", cfg.episodes, seed=cfg.seed, out=data / "reach", image_size=cfg.image_size)
    if cfg.explore_episodes > 0:
        collect_exploration(data / "explore", cfg.explore_episodes, seed=cfg.seed, image_size=cfg.image_size)
    return data


def stage_pretrain(cfg: DemoConfig, out: Path, data: Path) -> Path:
    def stage_config(preset: str, folder: str, overrides: dict, **optim):
        common = {"data": {"path": str(data)}, "run": {"seed": cfg.seed, "threads": cfg.threads,
                                                       "out": str(out / folder)}, "optim": optim}
        return load_pretrain_config(preset, deep_merge(common, overrides))

    pretrain(stage_config(cfg.pretrain, "pretrain", cfg.pretrain_overrides))
    pretrain(stage_config(cfg.cooldown, "cooldown", cfg.cooldown_overrides,
                          anneal_ckpt=str(out / "pretrain" / "latest.pt")))
    return out / "cooldown" / "latest.pt"


def stage_ac(cfg: DemoConfig, out: Path, data: Path, encoder_ckpt: Path) -> dict:
    ac_dir = out / "ac"
    stage = {"data": {"path": str(data)}, "model": {"encoder_checkpoint": str(encoder_ckpt)},
             "run": {"seed": cfg.seed, "out": str(ac_dir)}}
    result = train_ac(load_ac_config(cfg.ac, deep_merge(stage, cfg.ac_overrides)))  # writes ac_dir/config.yaml
    # The last held-out evaluation (also when a finished run was only resumed and trained no further).
    report = json.loads((ac_dir / "eval" / "horizon_errors.json").read_text())
    return {"step": result["step"], "horizon_l1": {k: v for k, v in report.items() if k != "step"}}


def stage_head(cfg: DemoConfig, out: Path, wm: VJEPAWorldModel) -> tuple[StateHead, dict]:
    """Fit the EE head on the AC run's training episodes (real latents, plus the predictor's rollouts of them
    when `head_on_predictions`); report its error on held-out real and predicted latents."""
    path = out / "state_head.pt"
    ac_cfg = load_ac_config(out / "ac" / "config.yaml")
    latents, states, episode = store_frames(out / "ac" / "features.zarr", ac_cfg.loss.normalize_reps)
    train_eps, val_eps = split_episodes(int(episode.max()) + 1, ac_cfg.data.val_fraction)  # the AC run's split
    preds, pred_states, pred_episode, pred_step = predicted_latents(wm.predictor, latents, states, episode,
                                                                    cfg.horizon, ac_cfg.loss.normalize_reps)
    if path.exists():
        head = load_state_head(path)
    else:
        torch.manual_seed(cfg.seed)
        head = StateHead(latents.shape[1], latents.shape[2])
        rows, pred_rows = np.isin(episode, train_eps), np.isin(pred_episode, train_eps)
        x, y, groups = latents[rows], states[rows, :3], episode[rows]
        if cfg.head_on_predictions:
            x = torch.cat([x, preds[pred_rows]])
            y = np.concatenate([y, pred_states[pred_rows, :3].numpy()])
            groups = np.concatenate([groups, pred_episode[pred_rows]])
        fit_state_head(head, x, y, groups=groups, steps=cfg.head_steps, seed=cfg.seed, log=log)
        save_state_head(head, path)
        head.requires_grad_(False)
    val, pred_val = np.isin(episode, val_eps), np.isin(pred_episode, val_eps)
    report = {"held_out_real": head_errors(head, latents[val], states[val, :3])}
    for k in range(1, cfg.horizon + 1):
        sel = pred_val & (pred_step == k)
        report[f"held_out_predicted_h{k}"] = head_errors(head, preds[sel], pred_states[sel, :3])
    log("state head, held-out mean EE error: " + ", ".join(f"{k} {v['mean'] * 100:.2f} cm" for k, v in report.items()))
    return head, report


def planning_energy(cfg: DemoConfig, head: StateHead):
    if cfg.head_weight == 0:
        return LatentDistance("l1", cfg.energy_steps)
    return StateHeadEnergy(head, head_weight=cfg.head_weight, latent_weight=cfg.latent_weight,
                           steps=cfg.energy_steps)


def stage_landscape(cfg: DemoConfig, out: Path, wm: VJEPAWorldModel, head: StateHead) -> dict:
    """Held-out frames of the AC split: energy vs true EE distance, trained / untrained encoder / pixels."""
    from droid_data import find_episodes, read_episode

    ac_cfg = load_ac_config(out / "ac" / "config.yaml")
    folders = find_episodes(out / "data")  # the AC run's episode order, so the split is its split
    _, val_eps = split_episodes(len(folders), ac_cfg.data.val_fraction)
    frames, positions = [], []
    for e in val_eps:
        ep = read_episode(folders[e])
        frames.append(ep.load_frames(ep.cameras[0]))
        positions.append(ep.states[:, :3])
    frames, positions = np.concatenate(frames), np.concatenate(positions)

    ckpt_cfg = load_checkpoint(out / "ac" / "latest.pt", required=("config",))["config"]
    torch.manual_seed(cfg.seed + 1)
    untrained = build_encoder(ckpt_cfg["encoder"]).eval()

    def encode_untrained(images):
        return runtime.encode(untrained, torch.from_numpy(np.ascontiguousarray(images)), wm.normalize_reps,
                             wm.tubelet_size)

    l1, planning = LatentDistance("l1"), planning_energy(cfg, head)
    variants = {  # name -> (encode, energy)
        "trained encoder, planning energy": (wm.encode, planning),
        "trained encoder, latent L1": (wm.encode, l1),
        "untrained encoder, latent L1": (encode_untrained, l1),
        "pixels 16x16, L1": (pixel_latents, l1),
    }
    result = {"held_out_frames": len(frames), "pairs": {}}
    cache = {}
    for name, (encode, energy) in variants.items():
        if encode not in cache:
            cache[encode] = encode_all(encode, frames)
        z = cache[encode]
        result["pairs"][name] = goal_distance_correlation(z, positions, energy, goals=cfg.landscape_goals,
                                                          others=min(cfg.landscape_others, len(frames) - 1),
                                                          seed=cfg.seed)
        log(f"landscape {name}: Spearman {result['pairs'][name]['spearman_mean']:.3f}")
    env = gym.make(TASK_IDS["reach"], image_size=cfg.image_size)
    result["straight_path"] = straight_path(env, variants, seeds=range(1000, 1000 + cfg.path_seeds))
    env.close()
    plot_straight_path(result["straight_path"], out / "landscape.png")
    (out / "landscape.json").write_text(json.dumps(result, indent=2))
    return result


def plot_straight_path(path_result: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    frac = np.linspace(0, 1, path_result["points"])
    for name, v in path_result.items():
        if isinstance(v, dict):
            ax.plot(frac, v["relative_energy"], marker="o", label=f"{name} (rho {v['spearman']:.2f})")
    ax.set_xlabel("fraction of the straight path to the goal")
    ax.set_ylabel("energy / energy at start")
    ax.set_title("energy along straight paths to the goal")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def build_mpc(cfg: DemoConfig, wm: VJEPAWorldModel, head: StateHead) -> MPC:
    planner = CEMPlanner(CEMConfig(horizon=cfg.horizon, samples=cfg.samples, topk=cfg.topk, iterations=cfg.iterations,
                                   action_space=ActionSpace(maxnorm=cfg.maxnorm), seed=cfg.seed),
                         energy=planning_energy(cfg, head))
    return MPC(wm, planner)


def stage_evaluate(cfg: DemoConfig, out: Path, mpc: MPC) -> list[dict]:
    rows = []
    eval_seed = 10_000 + cfg.seed  # episodes the data collection never used
    for task, episodes, max_steps in [("reach", cfg.eval_episodes, None),
                                      *[(t, cfg.extra_episodes, cfg.extra_max_steps) for t in cfg.extra_tasks]]:
        if episodes < 1:
            continue
        env_id = TASK_IDS[task]

        def make_env(env_id=env_id):
            return gym.make(env_id, image_size=cfg.image_size)

        log(f"CEM on {env_id}: {episodes} episodes")
        report = evaluate(make_env, mpc, episodes, eval_seed, out / "eval" / f"{task}_cem", videos=cfg.videos,
                          max_steps=max_steps, metadata={"task": env_id})
        rows.append(table_row(task, "CEM + world model (goal image)", report,
                         report["planning_seconds_per_action"]["mean"]))
        if task != "reach" and cfg.baseline_episodes < 1:
            continue
        n = cfg.baseline_episodes if task == "reach" else episodes
        for name, policy in (("random actions", UniformRandomPolicy(ActionSpace(maxnorm=cfg.maxnorm))),
                             ("scripted oracle (knows goal pose)", make_policy(task, "oracle"))):
            report = evaluate_policy(make_env, policy, n, eval_seed, max_steps=max_steps, desc=f"{name} {task}")
            (out / "eval" / f"{task}_{report['policy']}.json").write_text(json.dumps(report, indent=2))
            rows.append(table_row(task, name, report, None))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# report


def results_markdown(rows, landscape, ac, head_report, timer: Timer, cfg: DemoConfig) -> str:
    lines = ["## Closed loop (success measured by the simulator)", "",
             "| task | policy | success | 95% CI | final distance | planning s/action |", "|---|---|---|---|---|---|"]
    for r in rows:
        sec = f"{r['seconds_per_action']:.3f}" if r["seconds_per_action"] is not None else "-"
        lines.append(f"| {r['task']} | {r['policy']} | {r['successes']}/{r['episodes']} = {r['success_rate']:.0%} | "
                     f"{r['ci95'][0]:.0%}-{r['ci95'][1]:.0%} | {r['final_distance_m'] * 100:.1f} cm | {sec} |")
    lines += ["", "## Energy landscape (held-out frames; 1 = energy ranks positions by distance to the goal)", "",
              ("| features / energy | Spearman, random pairs | Spearman, straight path | energy fell (share of steps) "
              "| path energy at goal / at start |"), "|---|---|---|---|---|"]
    for name, v in landscape["pairs"].items():
        p = landscape["straight_path"][name]
        lines.append(f"| {name} | {v['spearman_mean']:.3f} | {p['spearman']:.3f} | {p['monotone']:.0%} | "
                     f"{p['relative_energy'][-1]:.2f} |")
    h = ac.get("horizon_l1", {})
    if h:
        lines += ["", "## World model (held-out latent L1; copy = repeat the last observed frame)", "",
                  "| step | rollout | copy first frame | ratio |", "|---|---|---|---|"]
        for k, (roll, copy) in enumerate(zip(h["rollout"], h["copy_first"])):
            if not np.isnan(roll):
                lines.append(f"| h{k + 1} | {roll:.4f} | {copy:.4f} | {roll / copy:.2f} |")
    lines += ["", "## State head (held-out episodes; mean / median end-effector error)", "",
              "| latents | mean | median |", "|---|---|---|"]
    lines += [f"| {k.replace('held_out_', '')} | {v['mean'] * 100:.2f} cm | {v['median'] * 100:.2f} cm |"
              for k, v in head_report.items()]
    lines += ["", "## Wall time", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in timer.stages.items()]
    lines += [f"| total | {sum(timer.stages.values()):.0f} |", "",
              f"torch threads {torch.get_num_threads()}; config: " + json.dumps(asdict(cfg))]
    return "\n".join(lines) + "\n"


def run(cfg: DemoConfig) -> int:
    """Every stage in order (each resumes from what it finds in ``cfg.out``); writes the results tables."""
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    log(f"output folder {out}")

    with timer.stage("1. collect simulator episodes (DROID layout)"):
        data = stage_collect(cfg, out)
    with timer.stage("2. pretrain + cooldown encoder"):
        encoder_ckpt = stage_pretrain(cfg, out, data)
    with timer.stage("3. train AC predictor"):
        ac = stage_ac(cfg, out, data, encoder_ckpt)
    wm = VJEPAWorldModel.from_checkpoint(out / "ac" / "latest.pt")
    with timer.stage("4. state head"):
        head, head_report = stage_head(cfg, out, wm)
    with timer.stage("5. energy landscape"):
        landscape = stage_landscape(cfg, out, wm, head)
    with timer.stage("6. closed-loop evaluation"):
        rows = stage_evaluate(cfg, out, build_mpc(cfg, wm, head))

    text = results_markdown(rows, landscape, ac, head_report, timer, cfg)
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps({"rows": rows, "landscape": landscape, "ac": ac,
                                                  "state_head": head_report, "stages_s": timer.stages,
                                                  "config": to_dict(cfg)}, indent=2))
    print("\n" + text)
    log(f"results in {out / 'results.md'}; videos and plots in {out / 'eval'} and {out / 'landscape.png'}")
    return 0
