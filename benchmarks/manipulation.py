"""Goal-image manipulation through the world model: one table, task x policy (the headline benchmark).

    python benchmarks/manipulation.py                        # the full protocol (about an hour on 2 idle cores)
    python benchmarks/manipulation.py --episodes 10 --out runs/manip10   # a quicker, wider-interval look

Stages (each resumes from what it finds in --out, so an interrupted run continues where it stopped):
  1. collect     contact-rich DROID-layout episodes: scripted grasps, lifts, carries, places, pushes, failed grasps,
                 object exploration, reach and workspace exploration; cube and cup, random colours, camera jitter
  2. pretrain    V-JEPA encoder + cooldown on them (the demo's presets)
  3. ac          the AC predictor on the frozen encoder          | 3u. the same on an untrained encoder
  4. head        a light head on frozen latents -> the robot's own state (end-effector xyz and gripper closedness),
                 fitted on the recorded proprioception           | 4u. the same on the untrained encoder's latents
  5. evaluate    per task, on env seeds never used for data: CEM + world model, CEM + untrained-encoder world
                 model, random actions, and the scripted ORACLE (which reads the simulator's object pose)

The planner sees the current image, the robot's state and the goal (or sub-goal) image, never an object pose:
    energy = L1(predicted latent, goal latent) + head_weight * || head(predicted) - head(goal) ||
summed over the horizon, where head reads [x, y, z, gripper_scale * closedness] from a latent. Pick-and-place
follows the task's sub-goal schedule (planning.mpc.goal_schedule). Success is decided by the simulator.

Writes OUT/results.md + OUT/results.json (the table), OUT/eval/<task>_<policy>/ (reports, 2 videos per task).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import envs  # registers the Franka tasks (and names them: envs.TASKS)
from envs.collect import SceneVariation, collect_mix
from envs.policies import make_policy
from planning.cem import CEMConfig, CEMPlanner
from planning.common import ActionSpace
from planning.energy import StateHeadEnergy
from planning.evaluate import evaluate, table_row
from planning.mpc import MPC
from planning.policy_eval import UniformRandomPolicy, evaluate_policy
from vjepa_ac.ac_train import load_ac_config
from vjepa_ac.ac_train import run as train_ac
from vjepa_ac.checkpoint import atomic_save, load_checkpoint
from vjepa_ac.models.specs import encoder_spec_from_pretrain_config
from vjepa_ac.pretrain import load_pretrain_config
from vjepa_ac.pretrain import train as pretrain
from vjepa_ac.runtime import VJEPAWorldModel, build_encoder
from vjepa_ac.state_head import (
    StateHead,
    fit_state_head,
    load_state_head,
    predicted_latents,
    save_state_head,
    store_frames,
)

TASK_IDS = {name: env_id for name, (env_id, _) in envs.TASKS.items()}
# The targets (success rate), printed beside the measured figures.
TARGETS = {"reach": 0.95, "grasp": 0.60, "reach_with_object": 0.70, "pick_place": 0.50, "push": 0.50}
PIPELINES = {"pretrained": "CEM + world model (pretrained encoder)",
             "untrained": "CEM + world model (untrained encoder)"}
STATE_COLUMNS = [0, 1, 2, 6]  # what the head reads from a latent: end-effector xyz and gripper closedness


@dataclass
class BenchmarkConfig:
    out: str = "runs/manipulation"  # output folder; every stage resumes from what it finds there
    seed: int = 0  # seed of collection and training (evaluation uses env seeds 10_000 + seed + i)
    threads: int = 1  # torch threads (1: the ops are small; see vjepa_ac/demo.py)
    tasks: list[str] = field(default_factory=lambda: list(TARGETS))  # reach first, then by difficulty
    episodes: int = 30  # evaluation episodes per task and policy
    # 1. data: mix components (envs.collect.parse_mix) and scene variation
    mix: str = ("reach:120,explore:60,grasp:160,reach_with_object:100,pick_place:120,push:100,"
                "explore_object:80")
    image_size: int = 64
    camera: str = "ext2"  # the exterior camera that sees a held object best (docs/envs.md)
    objects: tuple[str, ...] = ("cube", "cup")
    random_colors: bool = True
    camera_jitter: float = 0.02  # metres per axis, so the encoder does not memorise one viewpoint
    # 2-3. training: the demo's presets and step counts (what fits the 60-minute CPU budget)
    pretrain_epochs: int = 8  # pretraining epochs of `steps_per_epoch` steps, batch 16 (demo-pretrain)
    cooldown_epochs: int = 2  # cooldown epochs, batch 8 of 8-frame clips (demo-cooldown)
    steps_per_epoch: int = 50
    ac_steps: int = 800
    ac_depth: int = 2
    # 4. head and energy
    head_steps: int = 1500
    gripper_scale: float = 0.1  # metres the head counts for a full gripper closure
    head_weight: float = 10.0  # energy units per metre of head distance
    latent_weight: float = 1.0
    energy_steps: str = "all"  # score "all" planned steps (sum) or only the "last" (official)
    # 5. planner
    horizon: int = 2
    samples: int = 100
    topk: int = 10
    iterations: int = 4
    maxnorm: float = 0.05
    videos: int = 2
    # world-model pipelines to train and evaluate: "pretrained" (the product) and "untrained" (the same pipeline on
    # a randomly initialised encoder of the same architecture: does pretraining earn its place?)
    pipelines: list[str] = field(default_factory=lambda: list(PIPELINES))
    baselines: bool = True  # also evaluate random actions and the scripted ORACLE


def log(msg: str) -> None:
    print(f"[manipulation {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------------------------
# stages


def stage_collect(cfg: BenchmarkConfig, out: Path) -> Path:
    data = out / "data"
    collect_mix(cfg.mix, data, seed=cfg.seed, image_size=cfg.image_size, cameras=(cfg.camera,),
                variation=SceneVariation(objects=tuple(cfg.objects), random_colors=cfg.random_colors,
                                         camera_jitter=cfg.camera_jitter))
    return data


def stage_pretrain(cfg: BenchmarkConfig, out: Path, data: Path) -> Path:
    def config(preset: str, folder: str, **optim):
        stage = {"data": {"path": str(data), "cameras": [cfg.camera]},
                 "run": {"seed": cfg.seed, "threads": cfg.threads, "out": str(out / folder)}, "optim": optim}
        return load_pretrain_config(preset, stage)

    pretrain(config("demo-pretrain", "pretrain", epochs=cfg.pretrain_epochs, steps_per_epoch=cfg.steps_per_epoch))
    pretrain(config("demo-cooldown", "cooldown", epochs=cfg.cooldown_epochs, steps_per_epoch=cfg.steps_per_epoch,
                    anneal_ckpt=str(out / "pretrain" / "latest.pt")))
    return out / "cooldown" / "latest.pt"


def untrained_encoder(cfg: BenchmarkConfig, out: Path, trained: Path) -> Path:
    """A checkpoint of the trained encoder's architecture with freshly initialised weights."""
    path = out / "untrained_encoder.pt"
    if not path.exists():
        config = load_checkpoint(trained, required=("config",))["config"]
        torch.manual_seed(cfg.seed + 1)
        encoder = build_encoder(encoder_spec_from_pretrain_config(config))
        atomic_save({"config": config, "target_encoder": encoder.state_dict()}, path)
    return path


def stage_ac(cfg: BenchmarkConfig, ac_dir: Path, data: Path, encoder_ckpt: Path) -> tuple[VJEPAWorldModel, dict]:
    """The AC run (resumed if finished) -> its world model and what `ac_train.run` reports (store, split)."""
    stage = {"data": {"path": str(data), "camera": cfg.camera},
             "model": {"encoder_checkpoint": str(encoder_ckpt), "predictor_depth": cfg.ac_depth},
             "optim": {"total_steps": cfg.ac_steps, "warmup_steps": min(100, cfg.ac_steps // 10)},
             "run": {"seed": cfg.seed, "out": str(ac_dir)}}
    ac = train_ac(load_ac_config("ac-demo", stage))
    return VJEPAWorldModel.from_checkpoint(ac["checkpoint"]), ac


def stage_head(cfg: BenchmarkConfig, ac_dir: Path, wm: VJEPAWorldModel, ac: dict) -> tuple[StateHead, dict]:
    """Fit the state head on the AC run's training episodes: real latents and the predictor's rollouts of them
    (what planning reads it on). Held-out errors of xyz (cm) and gripper closedness are reported."""
    path = ac_dir / "state_head.pt"
    latents, states, episode = store_frames(ac["feature_store"], wm.normalize_reps)
    train_eps, val_eps = ac["split"]["train"], ac["split"]["val"]  # the AC run's own split
    preds, pred_states, pred_episode, pred_step = predicted_latents(wm.predictor, latents, states, episode,
                                                                    cfg.horizon, wm.normalize_reps)
    scale = np.array([1.0, 1.0, 1.0, cfg.gripper_scale])
    targets, pred_targets = states[:, STATE_COLUMNS] * scale, pred_states[:, STATE_COLUMNS].numpy() * scale
    if path.exists():
        head = load_state_head(path)
    else:
        torch.manual_seed(cfg.seed)
        head = StateHead(latents.shape[1], latents.shape[2], out=len(STATE_COLUMNS))
        rows, pred_rows = np.isin(episode, train_eps), np.isin(pred_episode, train_eps)
        fit_state_head(head, torch.cat([latents[rows], preds[pred_rows]]),
                       np.concatenate([targets[rows], pred_targets[pred_rows]]),
                       groups=np.concatenate([episode[rows], pred_episode[pred_rows]]), steps=cfg.head_steps,
                       seed=cfg.seed, log=log)
        save_state_head(head, path)
    head.requires_grad_(False)

    def errors(x, y):
        with torch.no_grad():
            err = np.abs(head(x).numpy() - y)
        return {"xyz_cm": float(np.linalg.norm(err[:, :3], axis=1).mean() * 100),
                "gripper": float(err[:, 3].mean() / cfg.gripper_scale)}

    val, pred_val = np.isin(episode, val_eps), np.isin(pred_episode, val_eps)
    report = {"held_out_real": errors(latents[val], targets[val])}
    for k in range(1, cfg.horizon + 1):
        sel = pred_val & (pred_step == k)
        report[f"held_out_predicted_h{k}"] = errors(preds[sel], pred_targets[sel])
    log("state head, held-out: " + ", ".join(f"{k} xyz {v['xyz_cm']:.2f} cm, gripper {v['gripper']:.3f}"
                                              for k, v in report.items()))
    return head, report


def build_mpc(cfg: BenchmarkConfig, wm: VJEPAWorldModel, head: StateHead) -> MPC:
    energy = StateHeadEnergy(head, head_weight=cfg.head_weight, latent_weight=cfg.latent_weight, steps=cfg.energy_steps)
    planner = CEMPlanner(CEMConfig(horizon=cfg.horizon, samples=cfg.samples, topk=cfg.topk, iterations=cfg.iterations,
                                   action_space=ActionSpace(maxnorm=cfg.maxnorm), seed=cfg.seed), energy=energy)
    return MPC(wm, planner)


def evaluate_task(cfg: BenchmarkConfig, out: Path, task: str, mpcs: dict[str, MPC]) -> list[dict]:
    """Every policy on `task`, each on the same env seeds; a finished policy's report is reused."""
    seed = 10_000 + cfg.seed  # collection never used these seeds (its seeds come from SeedSequence hashes)

    def make_env():
        return gym.make(TASK_IDS[task], image_size=cfg.image_size, camera=cfg.camera)

    rows = []
    for pipeline, mpc in mpcs.items():
        folder = out / "eval" / f"{task}_{pipeline}"
        if (folder / "report.json").exists():
            report = json.loads((folder / "report.json").read_text())
        else:
            log(f"{task}: {PIPELINES[pipeline]}, {cfg.episodes} episodes")
            report = evaluate(make_env, mpc, cfg.episodes, seed, folder, videos=cfg.videos, landscape=False,
                              metadata={"task": TASK_IDS[task], "policy": PIPELINES[pipeline]})
        rows.append(table_row(task, PIPELINES[pipeline], report, report["planning_seconds_per_action"]["mean"]))
    baselines = (("random actions", UniformRandomPolicy(ActionSpace(maxnorm=cfg.maxnorm))),
                 ("scripted ORACLE (reads object pose)", make_policy(task, "oracle")))
    for name, policy in baselines if cfg.baselines else ():
        path = out / "eval" / f"{task}_{name.split()[0].lower()}.json"
        if path.exists():
            report = json.loads(path.read_text())
        else:
            report = evaluate_policy(make_env, policy, cfg.episodes, seed, desc=f"{name} {task}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=2))
        rows.append(table_row(task, name, report, None))
    return rows


def results_markdown(rows: list[dict], heads: dict, stages: dict, cfg: BenchmarkConfig) -> str:
    lines = ["| task | policy | success | 95% Wilson CI | target | final distance | planning s/action |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        sec = f"{r['seconds_per_action']:.3f}" if r["seconds_per_action"] is not None else "-"
        target = f"{TARGETS[r['task']]:.0%}" if r["policy"] == PIPELINES["pretrained"] else ""
        lines.append(f"| {r['task']} | {r['policy']} | {r['successes']}/{r['episodes']} = {r['success_rate']:.0%} | "
                     f"{r['ci95'][0]:.0%}-{r['ci95'][1]:.0%} | {target} | {r['final_distance_m'] * 100:.1f} cm | "
                     f"{sec} |")
    lines += ["", "final distance: the object's distance to its goal (reach: the end effector's).", "",
              "| state head | latents | xyz error | gripper error |", "|---|---|---|---|"]
    for name, report in heads.items():
        lines += [f"| {name} | {k.replace('held_out_', 'held-out ')} | {v['xyz_cm']:.2f} cm | {v['gripper']:.3f} |"
                  for k, v in report.items()]
    lines += ["", "| stage | seconds |", "|---|---|"] + [f"| {k} | {v:.0f} |" for k, v in stages.items()]
    lines += ["", f"torch threads {torch.get_num_threads()}; config: " + json.dumps(asdict(cfg))]
    return "\n".join(lines) + "\n"


def run(cfg: BenchmarkConfig) -> int:
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}

    def timed(name, fn, *args):
        log(f"--- {name} ---")
        start = time.perf_counter()
        result = fn(*args)
        stages[name] = time.perf_counter() - start
        return result

    data = timed("1. collect", stage_collect, cfg, out)
    encoder = timed("2. pretrain + cooldown", stage_pretrain, cfg, out, data)
    pipelines = {"pretrained": (out / "ac", encoder)}
    if "untrained" in cfg.pipelines:
        pipelines["untrained"] = (out / "ac_untrained", untrained_encoder(cfg, out, encoder))
    mpcs, heads = {}, {}
    for name, (ac_dir, encoder_ckpt) in pipelines.items():
        if name not in cfg.pipelines:
            continue
        wm, ac = timed(f"3. AC predictor, {name}", stage_ac, cfg, ac_dir, data, encoder_ckpt)
        head, heads[name] = timed(f"4. state head, {name}", stage_head, cfg, ac_dir, wm, ac)
        mpcs[name] = build_mpc(cfg, wm, head)
    rows = []
    for task in cfg.tasks:
        rows += timed(f"5. evaluate {task}", evaluate_task, cfg, out, task, mpcs)
    text = results_markdown(rows, heads, stages, cfg)
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps({"rows": rows, "heads": heads, "stages_s": stages,
                                                  "config": asdict(cfg)}, indent=2))
    print("\n" + text)
    return 0


def parse_args(argv=None) -> BenchmarkConfig:
    defaults = BenchmarkConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        elif isinstance(value, (list, tuple)):
            parser.add_argument(flag, nargs="+", default=list(value))
        else:
            parser.add_argument(flag, type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    for flag, known in (("tasks", TASK_IDS), ("pipelines", PIPELINES)):
        unknown = [name for name in args[flag] if name not in known]
        if unknown or not args[flag]:
            parser.error(f"--{flag}: expected names among {list(known)}, got {args[flag]}")
    if args["episodes"] < 1:
        parser.error(f"--episodes: expected >= 1, got {args['episodes']}")
    args["objects"] = tuple(args["objects"])
    return BenchmarkConfig(**args)


if __name__ == "__main__":
    sys.exit(run(parse_args()))
