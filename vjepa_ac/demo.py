"""End-to-end CPU demo: the world model plans. `make demo` runs it (about 10-20 minutes on 2 CPU cores).

A short sequence of package calls and CLI stages. Each stage writes a manifest, OUT/manifests/<stage>.json
(vjepa_ac.stages: its settings and what the next stages need: checkpoint, feature store, split, camera, energy
file), and later stages read only those manifests. A stage that finished with the same settings is reused on a
rerun; an interrupted one resumes from what it finds.
  collect        scripted FrankaReach-v0 episodes + workspace exploration, DROID raw layout  (envs.collect)
  encoder        a tiny V-JEPA encoder pretrained on them (video mode), then a cooldown      (vjepa_ac.pretrain)
  ac             the action-conditioned predictor on the frozen encoder; its feature store and split
                                                                                             (vjepa_ac.ac_train)
  head           a light end-effector head on frozen latents, from the recorded states      (vjepa_ac.state_head)
  energy         the planning energy as a file, OUT/energy.yaml (+ head/state_head.pt)     (vjepa_ac.energy_file)
  landscape      does the planning energy track the true distance? trained / untrained / pixels (planning.landscape)
  evaluate-TASK  closed-loop CEM from goal images: `vjepa-evaluate` itself, with the energy file; the exact
                 command is printed and stored, so the CLI alone reproduces the row      (vjepa_ac.cli.evaluate)
  baselines-TASK a random policy and the scripted oracle on the same episodes            (planning.policy_eval)

The planner sees the current image and proprioceptive state and the goal image, never the goal pose; success is
measured by the simulator. Energy = latent L1 + head_weight * ||head(predicted latent) - head(goal latent)||.

    python scripts/demo.py                                  # the demo (preset demo-reach), results in runs/demo
    python scripts/demo.py --config demo-toy --out /tmp/t   # the 1-2 minute toy pipeline (also run by the tests)
    python scripts/demo.py --eval_episodes 50 --head_weight 20

Writes OUT/results.md and OUT/results.json (the tables printed at the end), OUT/eval/*/ (reports, videos,
energy-landscape plots), OUT/landscape.json, OUT/landscape.png, OUT/energy.yaml and OUT/manifests/.
"""
from __future__ import annotations

import json
import math
import os
import shlex
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import envs  # registers the Franka tasks (and names them: envs.TASKS)
from envs.collect import collect_episodes, collect_exploration
from envs.policies import make_policy
from planning.common import ENERGY_STEPS, ActionSpace
from planning.energy import LatentDistance
from planning.evaluate import table_row
from planning.landscape import encode_all, goal_distance_correlation, pixel_latents, straight_path
from planning.policy_eval import UniformRandomPolicy, evaluate_policy
from vjepa_ac import runtime
from vjepa_ac.ac_train import load_ac_config
from vjepa_ac.ac_train import run as train_ac
from vjepa_ac.checkpoint import load_checkpoint
from vjepa_ac.config import deep_merge, finite_nonnegative, need, to_dict
from vjepa_ac.energy_file import EnergyConfig, load_energy, save_energy
from vjepa_ac.pretrain import load_pretrain_config
from vjepa_ac.pretrain import train as pretrain
from vjepa_ac.runtime import VJEPAWorldModel, build_encoder
from vjepa_ac.stages import run_stage
from vjepa_ac.state_head import (
    StateHead,
    fit_state_head,
    head_errors,
    predicted_latents,
    save_state_head,
    store_frames,
)

TASK_IDS = {name: env_id for name, (env_id, _) in envs.TASKS.items()}


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
    eval_max_steps: int | None = None  # reach step budget (None: the task default, 30)
    baseline_episodes: int = 30  # episodes of the random and oracle baselines
    # other tasks planned with the same (reach-trained) model; benchmarks/manipulation.py trains for manipulation
    extra_tasks: list[str] = field(default_factory=lambda: ["grasp", "push", "pick_place"])
    extra_episodes: int = 10  # episodes per extra task
    extra_max_steps: int | None = 40  # step budget of the extra tasks (None: the task's default)
    videos: int = 2  # episodes saved as videos per task

    def __post_init__(self):  # every field checked here, so a bad value fails before the first stage starts
        for name in ("episodes", "threads", "landscape_goals", "landscape_others", "horizon", "samples", "iterations",
                     "eval_episodes"):
            need(getattr(self, name) >= 1, name, ">= 1", getattr(self, name))
        for name in ("explore_episodes", "head_steps", "path_seeds", "baseline_episodes", "extra_episodes", "videos"):
            need(getattr(self, name) >= 0, name, ">= 0", getattr(self, name))
        need(self.image_size >= 16, "image_size", "pixels >= 16", self.image_size)
        for name in ("head_weight", "latent_weight"):
            need(finite_nonnegative(getattr(self, name)), name, "finite and >= 0", getattr(self, name))
        need(self.head_weight + self.latent_weight > 0, "head_weight + latent_weight", "> 0",
             self.head_weight + self.latent_weight)
        need(self.energy_steps in ENERGY_STEPS, "energy_steps", " or ".join(map(repr, ENERGY_STEPS)),
             self.energy_steps)
        need(2 <= self.topk <= self.samples, "topk", f"2..samples={self.samples}", self.topk)
        need(math.isfinite(self.maxnorm) and self.maxnorm > 0, "maxnorm", "finite metres > 0", self.maxnorm)
        unknown = [task for task in self.extra_tasks if task not in TASK_IDS]
        need(not unknown, "extra_tasks", f"names among {sorted(TASK_IDS)}", self.extra_tasks)
        for name in ("eval_max_steps", "extra_max_steps"):
            need(getattr(self, name) is None or getattr(self, name) >= 1, name, "None or >= 1", getattr(self, name))


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
# stages: each returns the outputs its manifest records (vjepa_ac.stages); later stages read only those


def stage_collect(cfg: DemoConfig, out: Path) -> dict:
    """Episodes under OUT/data: reach/ (scripted task data) and explore/ (the whole workspace)."""
    data = out / "data"
    reach = collect_episodes("reach", cfg.episodes, seed=cfg.seed, out=data / "reach", image_size=cfg.image_size)
    explore = []
    if cfg.explore_episodes > 0:
        explore = collect_exploration(data / "explore", cfg.explore_episodes, seed=cfg.seed,
                                      image_size=cfg.image_size)
    return {"root": str(data), "episodes": {"reach": len(reach), "explore": len(explore)},
            "image_size": cfg.image_size}


def stage_encoder(cfg: DemoConfig, out: Path, data: dict) -> dict:
    """Pretraining, then a cooldown that anneals from its last checkpoint."""
    def stage_config(preset: str, folder: str, overrides: dict, **optim):
        common = {"data": {"path": data["root"]}, "run": {"seed": cfg.seed, "threads": cfg.threads,
                                                           "out": str(out / folder)}, "optim": optim}
        return load_pretrain_config(preset, deep_merge(common, overrides))

    pretrain(stage_config(cfg.pretrain, "pretrain", cfg.pretrain_overrides))
    pretrain(stage_config(cfg.cooldown, "cooldown", cfg.cooldown_overrides,
                          anneal_ckpt=str(out / "pretrain" / "latest.pt")))
    return {"checkpoint": str(out / "cooldown" / "latest.pt")}


def stage_ac(cfg: DemoConfig, out: Path, data: dict, encoder: dict) -> dict:
    """The AC predictor on the frozen encoder; records its checkpoint, feature store, split and camera."""
    ac_cfg = load_ac_config(cfg.ac, deep_merge({"data": {"path": data["root"]},
                                                "model": {"encoder_checkpoint": encoder["checkpoint"]},
                                                "run": {"seed": cfg.seed, "out": str(out / "ac")}}, cfg.ac_overrides))
    result = train_ac(ac_cfg)
    # The AC run's own report of its last held-out evaluation (also when a finished run was only resumed).
    report = json.loads((Path(ac_cfg.run.out) / "eval" / "horizon_errors.json").read_text())
    return {"checkpoint": result["checkpoint"], "feature_store": result["feature_store"], "split": result["split"],
            "camera": ac_cfg.data.camera, "normalize_reps": ac_cfg.loss.normalize_reps, "step": result["step"],
            "horizon_l1": {k: v for k, v in report.items() if k != "step"}}


def stage_head(cfg: DemoConfig, out: Path, ac: dict, wm: VJEPAWorldModel) -> dict:
    """Fit the EE head on the AC run's training episodes (real latents, plus the predictor's rollouts of them
    when `head_on_predictions`); report its error on held-out real and predicted latents."""
    path = out / "head" / "state_head.pt"
    split = ac["split"]
    latents, states, episode = store_frames(ac["feature_store"], ac["normalize_reps"])
    preds, pred_states, pred_episode, pred_step = predicted_latents(wm.predictor, latents, states, episode,
                                                                    cfg.horizon, ac["normalize_reps"])
    torch.manual_seed(cfg.seed)
    head = StateHead(latents.shape[1], latents.shape[2])
    rows, pred_rows = np.isin(episode, split["train"]), np.isin(pred_episode, split["train"])
    x, y, groups = latents[rows], states[rows, :3], episode[rows]
    if cfg.head_on_predictions:
        x = torch.cat([x, preds[pred_rows]])
        y = np.concatenate([y, pred_states[pred_rows, :3].numpy()])
        groups = np.concatenate([groups, pred_episode[pred_rows]])
    fit_state_head(head, x, y, groups=groups, steps=cfg.head_steps, seed=cfg.seed, log=log)
    save_state_head(head, path)
    head.requires_grad_(False)
    val, pred_val = np.isin(episode, split["val"]), np.isin(pred_episode, split["val"])
    report = {"held_out_real": head_errors(head, latents[val], states[val, :3])}
    for k in range(1, cfg.horizon + 1):
        sel = pred_val & (pred_step == k)
        report[f"held_out_predicted_h{k}"] = head_errors(head, preds[sel], pred_states[sel, :3])
    # The reference a head must beat: always answering the training episodes' mean position.
    miss = np.linalg.norm(states[val, :3] - states[rows, :3].mean(0), axis=1)
    report["held_out_training_mean"] = {"mean": float(miss.mean()), "median": float(np.median(miss))}
    log("state head, held-out mean EE error: " + ", ".join(f"{k} {v['mean'] * 100:.2f} cm" for k, v in report.items()))
    return {"head": str(path), "report": report}


def stage_energy(cfg: DemoConfig, out: Path, head: dict) -> dict:
    """The planning energy as a file (vjepa_ac.energy_file): what `vjepa-evaluate --energy` plans with."""
    path = out / "energy.yaml"
    with_head = cfg.head_weight > 0
    save_energy(EnergyConfig(kind="l1", steps=cfg.energy_steps, latent_weight=cfg.latent_weight,
                             head_weight=cfg.head_weight,
                             head=os.path.relpath(head["head"], path.parent) if with_head else None), path)
    return {"energy": str(path)}


def stage_landscape(cfg: DemoConfig, out: Path, ac: dict, energy: dict, wm: VJEPAWorldModel) -> dict:
    """Held-out frames of the AC split: energy vs true EE distance, trained / untrained encoder / pixels."""
    from droid_data import read_episode

    frames, positions = [], []
    for e in ac["split"]["val"]:
        ep = read_episode(ac["split"]["episodes"][e])
        frames.append(ep.load_frames(ac["camera"]))
        positions.append(ep.states[:, :3])
    frames, positions = np.concatenate(frames), np.concatenate(positions)

    ckpt_cfg = load_checkpoint(ac["checkpoint"], required=("config",))["config"]
    torch.manual_seed(cfg.seed + 1)
    untrained = build_encoder(ckpt_cfg["encoder"]).eval()

    def encode_untrained(images):
        return runtime.encode(untrained, torch.from_numpy(np.ascontiguousarray(images)), wm.normalize_reps,
                             wm.tubelet_size)

    l1, planning = LatentDistance("l1"), load_energy(energy["energy"])
    variants = {  # name -> (encode, energy)
        "trained encoder, planning energy": (wm.encode, planning),
        "trained encoder, latent L1": (wm.encode, l1),
        "untrained encoder, latent L1": (encode_untrained, l1),
        "pixels 16x16, L1": (pixel_latents, l1),
    }
    result = {"held_out_frames": len(frames), "pairs": {}}
    cache = {}
    for name, (encode, energy_fn) in variants.items():
        if encode not in cache:
            cache[encode] = encode_all(encode, frames)
        z = cache[encode]
        result["pairs"][name] = goal_distance_correlation(z, positions, energy_fn, goals=cfg.landscape_goals,
                                                          others=min(cfg.landscape_others, len(frames) - 1),
                                                          seed=cfg.seed)
        log(f"landscape {name}: Spearman {result['pairs'][name]['spearman_mean']:.3f}")
    env = gym.make(TASK_IDS["reach"], image_size=cfg.image_size)
    result["straight_path"] = straight_path(env, variants, seeds=range(1000, 1000 + cfg.path_seeds))
    env.close()
    plot_straight_path(result["straight_path"], out / "landscape.png")
    (out / "landscape.json").write_text(json.dumps(result, indent=2))
    return {"report": str(out / "landscape.json"), "plot": str(out / "landscape.png")}


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


EVAL_SEED_OFFSET = 10_000  # evaluation episodes use env seeds the data collection never used


def evaluate_argv(cfg: DemoConfig, ac: dict, energy: dict, task: str, episodes: int, max_steps: int | None,
                  out_dir: Path) -> list[str]:
    """The `vjepa-evaluate` flags of the demo's CEM evaluation of `task` (printed, so anyone can rerun it)."""
    argv = ["--checkpoint", ac["checkpoint"], "--task", TASK_IDS[task], "--episodes", str(episodes),
            "--seed", str(EVAL_SEED_OFFSET + cfg.seed), "--out", str(out_dir),
            "--env-options", f"{{image_size: {cfg.image_size}}}", "--planner", "cem", "--horizon", str(cfg.horizon),
            "--samples", str(cfg.samples), "--topk", str(cfg.topk), "--iterations", str(cfg.iterations),
            "--maxnorm", str(cfg.maxnorm), "--planner-seed", str(cfg.seed), "--energy", energy["energy"],
            "--videos", str(cfg.videos), "--threads", str(cfg.threads)]
    return argv + (["--max-steps", str(max_steps)] if max_steps is not None else [])


def stage_evaluate(cfg: DemoConfig, out: Path, ac: dict, energy: dict, task: str, episodes: int,
                   max_steps: int | None) -> dict:
    """CEM with the world model and the run's energy on `task`: exactly `vjepa-evaluate` with `evaluate_argv`."""
    from vjepa_ac.cli import evaluate as evaluate_cli

    out_dir = out / "eval" / f"{task}_cem"
    argv = evaluate_argv(cfg, ac, energy, task, episodes, max_steps, out_dir)
    command = shlex.join(["python", "scripts/evaluate.py", *argv])
    log(f"CEM on {TASK_IDS[task]}: {episodes} episodes: {command}")
    code = evaluate_cli.main(argv)
    if code != 0:
        raise RuntimeError(f"stage evaluate-{task}: vjepa-evaluate exited with code {code} (command: {command})")
    return {"report": str(out_dir / "report.json"), "command": command}


def stage_baselines(cfg: DemoConfig, out: Path, task: str, episodes: int, max_steps: int | None) -> dict:
    """Random actions in the planner's box and the scripted oracle (knows the goal pose), same episodes."""
    def make_env(env_id=TASK_IDS[task]):
        return gym.make(env_id, image_size=cfg.image_size)

    reports = {}
    for name, policy in (("random actions", UniformRandomPolicy(ActionSpace(maxnorm=cfg.maxnorm))),
                         ("scripted oracle (knows goal pose)", make_policy(task, "oracle"))):
        report = evaluate_policy(make_env, policy, episodes, EVAL_SEED_OFFSET + cfg.seed, max_steps=max_steps,
                                 desc=f"{name} {task}")
        path = out / "eval" / f"{task}_{report['policy']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
        reports[name] = str(path)
    return {"reports": reports}


# ---------------------------------------------------------------------------------------------------------------
# report


def results_markdown(results: dict, timer: Timer, cfg: DemoConfig) -> str:
    rows, landscape, ac, head_report = results["rows"], results["landscape"], results["ac"], results["state_head"]
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
    lines += ["", ("## State head (held-out episodes; mean / median end-effector error; training_mean = always "
                   "answer the training mean)"), "",
              "| latents | mean | median |", "|---|---|---|"]
    lines += [f"| {k.replace('held_out_', '')} | {v['mean'] * 100:.2f} cm | {v['median'] * 100:.2f} cm |"
              for k, v in head_report.items()]
    lines += ["", "## Reproduce the closed-loop rows with the CLI (same checkpoint, energy file and seeds)", ""]
    lines += [f"    {command}" for command in results["evaluate_commands"].values()]
    lines += ["", "## Wall time (this run; a stage reused from an earlier run takes ~0 s)", "",
              "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in timer.stages.items()]
    lines += [f"| total | {sum(timer.stages.values()):.0f} |", "",
              f"torch threads {torch.get_num_threads()}; config: " + json.dumps(asdict(cfg))]
    return "\n".join(lines) + "\n"


def run(cfg: DemoConfig) -> int:
    """Every stage in order, linked by manifests (OUT/manifests/<stage>.json, vjepa_ac.stages): a stage that
    finished with the same settings is reused, others resume from what they find in ``cfg.out``."""
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    log(f"output folder {out}")

    def stage(title: str, name: str, params: dict, fn):
        with timer.stage(title):
            return run_stage(out, name, params, fn, log=log)

    seed = {"seed": cfg.seed}
    data = stage("1. collect simulator episodes (DROID layout)", "collect",
                 {**seed, "episodes": cfg.episodes, "explore_episodes": cfg.explore_episodes,
                  "image_size": cfg.image_size}, lambda: stage_collect(cfg, out))
    encoder = stage("2. pretrain + cooldown encoder", "encoder",
                    {**seed, "data": data["id"], "pretrain": cfg.pretrain, "cooldown": cfg.cooldown,
                     "pretrain_overrides": cfg.pretrain_overrides, "cooldown_overrides": cfg.cooldown_overrides},
                    lambda: stage_encoder(cfg, out, data["outputs"]))
    ac = stage("3. train AC predictor", "ac",
               {**seed, "data": data["id"], "encoder": encoder["id"], "ac": cfg.ac, "ac_overrides": cfg.ac_overrides},
               lambda: stage_ac(cfg, out, data["outputs"], encoder["outputs"]))
    wm = VJEPAWorldModel.from_checkpoint(ac["outputs"]["checkpoint"])
    head = stage("4. state head", "head",
                 {**seed, "ac": ac["id"], "head_steps": cfg.head_steps, "head_on_predictions": cfg.head_on_predictions,
                  "horizon": cfg.horizon}, lambda: stage_head(cfg, out, ac["outputs"], wm))
    energy = stage("5. planning energy", "energy",
                   {"head": head["id"], "head_weight": cfg.head_weight, "latent_weight": cfg.latent_weight,
                    "energy_steps": cfg.energy_steps}, lambda: stage_energy(cfg, out, head["outputs"]))
    landscape = stage("6. energy landscape", "landscape",
                      {**seed, "ac": ac["id"], "energy": energy["id"], "landscape_goals": cfg.landscape_goals,
                       "landscape_others": cfg.landscape_others, "path_seeds": cfg.path_seeds,
                       "image_size": cfg.image_size},
                      lambda: stage_landscape(cfg, out, ac["outputs"], energy["outputs"], wm))

    rows, commands = [], {}
    planner = {"horizon": cfg.horizon, "samples": cfg.samples, "topk": cfg.topk, "iterations": cfg.iterations,
               "maxnorm": cfg.maxnorm, "image_size": cfg.image_size, "videos": cfg.videos}
    for task, episodes, max_steps in [("reach", cfg.eval_episodes, cfg.eval_max_steps),
                                      *[(t, cfg.extra_episodes, cfg.extra_max_steps) for t in cfg.extra_tasks]]:
        if episodes < 1:
            continue
        common = {**seed, "task": task, "episodes": episodes, "max_steps": max_steps}
        cem = stage(f"7. closed-loop evaluation: {task}, CEM", f"evaluate-{task}",
                    {**common, **planner, "ac": ac["id"], "energy": energy["id"]},
                    partial(stage_evaluate, cfg, out, ac["outputs"], energy["outputs"], task, episodes, max_steps))
        report = json.loads(Path(cem["outputs"]["report"]).read_text())
        rows.append(table_row(task, "CEM + world model (goal image)", report,
                         report["planning_seconds_per_action"]["mean"]))
        commands[task] = cem["outputs"]["command"]
        n = cfg.baseline_episodes if task == "reach" else episodes
        if cfg.baseline_episodes < 1:
            continue
        baselines = stage(f"7. closed-loop evaluation: {task}, baselines", f"baselines-{task}",
                          {**common, "episodes": n, "maxnorm": cfg.maxnorm, "image_size": cfg.image_size},
                          partial(stage_baselines, cfg, out, task, n, max_steps))
        for name, path in baselines["outputs"]["reports"].items():
            rows.append(table_row(task, name, json.loads(Path(path).read_text()), None))

    results = {"rows": rows, "landscape": json.loads(Path(landscape["outputs"]["report"]).read_text()),
               "ac": ac["outputs"], "state_head": head["outputs"]["report"], "energy": energy["outputs"]["energy"],
               "evaluate_commands": commands, "stages_s": timer.stages, "config": to_dict(cfg)}
    text = results_markdown(results, timer, cfg)
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print("\n" + text)
    log(f"results in {out / 'results.md'}; videos and plots in {out / 'eval'} and {out / 'landscape.png'}")
    return 0
