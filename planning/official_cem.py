"""Re-implementation of the official V-JEPA 2-AC planner: the baseline of benchmarks/planning_latency.py and tests.

Written from the description of facebookresearch/vjepa2 `notebooks/utils/mpc_utils.py` and
`world_model_wrapper.py` (see /work/shared/reference/vjepa2_official_facts.md §6), keeping what makes it slow:
  * every horizon step re-runs the predictor over the whole trajectory so far (no KV cache, O(H^2));
  * the pose of each sample is integrated on the CPU with scipy, one sample at a time;
  * random numbers come from the global torch RNG, one ``randn(samples, 4)`` per horizon step.
It is a baseline to measure against, never used by the planners. `OfficialPlanner` runs the official
planner code itself from a local facebookresearch/vjepa2 checkout instead (benchmarks/planning_latency.py
``--official-repo``).
"""
from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation


def scipy_next_pose(pose: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Pose [S, 1, 7] after action [S, 1, 7], integrated per sample on the CPU (as the official planner)."""
    device, dtype = pose.device, pose.dtype
    p, a = pose[:, 0].cpu().numpy(), action[:, 0].cpu().numpy()
    xyz = p[:, :3] + a[:, :3]
    euler = np.stack([
        Rotation.from_matrix(
            Rotation.from_euler("xyz", a[i, 3:6]).as_matrix() @ Rotation.from_euler("xyz", p[i, 3:6]).as_matrix()
        ).as_euler("xyz")
        for i in range(len(p))
    ])
    grip = np.clip(p[:, 6:] + a[:, 6:], 0.0, 1.0)
    return torch.from_numpy(np.concatenate([xyz, euler, grip], axis=-1)).to(device).to(dtype)[:, None]


def prefix_step(predictor, tokens_per_frame: int, normalize_reps: bool = True):
    """World-model step of the official wrapper: re-run `predictor` on all frames so far, return the next one."""

    def step(frames: torch.Tensor, actions: torch.Tensor, poses: torch.Tensor):
        s, _, n, d = frames.shape
        nxt = predictor(frames.flatten(1, 2), actions, poses)[:, -tokens_per_frame:]
        if normalize_reps:
            nxt = F.layer_norm(nxt, (nxt.size(-1),))
        return nxt.view(s, 1, n, d), scipy_next_pose(poses[:, -1:], actions[:, -1:])

    return step


@torch.no_grad()
def official_cem(context_frame, context_pose, goal_frame, step, rollout=2, cem_steps=10, momentum_mean=0.15,
                 momentum_std=0.15, momentum_mean_gripper=0.15, momentum_std_gripper=0.15, samples=400, topk=10,
                 maxnorm=0.05, record=None):
    """Official CEM semantics. context_frame/goal_frame [1, 1, N, D], context_pose [1, 1, 7].

    Returns the plan [1, rollout, 7]. If `record` is a list, the energies [samples] of every iteration are
    appended to it (for comparison with `planning.cem`).
    """
    context_frame = context_frame.repeat(samples, 1, 1, 1)
    goal_frame = goal_frame.repeat(samples, 1, 1, 1)
    context_pose = context_pose.repeat(samples, 1, 1)
    device = context_frame.device
    mean = torch.zeros(rollout, 4, device=device)
    std = torch.cat([torch.full((rollout, 3), maxnorm, device=device), torch.ones(rollout, 1, device=device)], -1)

    for _ in range(cem_steps):
        actions, frames, poses = None, context_frame, context_pose
        for h in range(rollout):
            a = torch.randn(samples, 4, device=device) * std[h] + mean[h]
            a[:, :3] = torch.clip(a[:, :3], min=-maxnorm, max=maxnorm)
            a[:, -1:] = torch.clip(a[:, -1:], min=-0.75, max=0.75)
            a = torch.cat([a[:, :3], torch.zeros(samples, 3, device=device), a[:, -1:]], dim=-1)[:, None]
            actions = a if actions is None else torch.cat([actions, a], dim=1)
            next_frame, next_pose = step(frames, actions, poses)
            frames = torch.cat([frames, next_frame], dim=1)
            poses = torch.cat([poses, next_pose], dim=1)

        energy = torch.mean(torch.abs(frames[:, -1].flatten(1) - goal_frame.flatten(1)), dim=-1)
        if record is not None:
            record.append(energy)
        elite = actions[energy.topk(topk, largest=False).indices]
        e_mean, e_std = elite.mean(dim=0), elite.std(dim=0)
        mean = torch.cat([
            e_mean[..., :3] * (1.0 - momentum_mean) + mean[..., :3] * momentum_mean,
            e_mean[..., -1:] * (1.0 - momentum_mean_gripper) + mean[..., -1:] * momentum_mean_gripper,
        ], dim=-1)
        std = torch.cat([
            e_std[..., :3] * (1.0 - momentum_std) + std[..., :3] * momentum_std,
            e_std[..., -1:] * (1.0 - momentum_std_gripper) + std[..., -1:] * momentum_std_gripper,
        ], dim=-1)

    grip = mean[..., -1:].clone()
    grip[grip.abs() < 0.25] = 0
    return torch.cat([mean[..., :3], torch.zeros(rollout, 3, device=device), grip], dim=-1)[None]


class OfficialPlanner:
    """The official planner code itself: ``WorldModel.infer_next_action`` of a facebookresearch/vjepa2 checkout.

    The official ``vit_ac_predictor`` is built with `predictor_kwargs` and loads `predictor_state` strictly
    (our state dicts use the official key names). The official `cem` is called through the official wrapper
    with the given numbers; its `objective` argument is wrapped to record every iteration's energies.
    The checkout's own requirements must be importable (the AC predictor imports ``timm``).
    """

    def __init__(self, repo: str | Path, predictor_state: dict, predictor_kwargs: dict, tokens_per_frame: int):
        repo = Path(repo).resolve()
        wrapper = repo / "notebooks" / "utils" / "world_model_wrapper.py"
        if not wrapper.is_file():
            raise FileNotFoundError(f"--official-repo {repo}: no notebooks/utils/world_model_wrapper.py; "
                                    "pass the root of a facebookresearch/vjepa2 checkout")
        sys.path.insert(0, str(repo))
        try:
            ac_predictor = importlib.import_module("src.models.ac_predictor")
            self._wrapper = importlib.import_module("notebooks.utils.world_model_wrapper")
        except ImportError as err:
            raise ImportError(f"importing the official planner from {repo} failed ({err}); install the "
                              "checkout's requirements (e.g. pip install timm)") from err
        logging.getLogger("notebooks.utils.mpc_utils").disabled = True  # it logs the mean every iteration
        self.predictor = ac_predictor.vit_ac_predictor(**predictor_kwargs).eval()
        self.predictor.load_state_dict(predictor_state, strict=True)
        self.tokens_per_frame = tokens_per_frame

    @torch.no_grad()
    def plan(self, context, state, goal, *, rollout, samples, topk, cem_steps, maxnorm=0.05, momentum_mean=0.15,
             momentum_std=0.15, record=None):
        """context/goal [1, N, D], state [1, 7] -> plan [rollout, 7] (global torch RNG, as the official code)."""

        def l1(a, b):
            energy = torch.mean(torch.abs(a - b), dim=-1)
            if record is not None:
                record.append(energy)
            return energy

        args = {"rollout": rollout, "samples": samples, "topk": topk, "cem_steps": cem_steps,
                "momentum_mean": momentum_mean, "momentum_std": momentum_std, "maxnorm": maxnorm,
                "verbose": False, "objective": l1}
        world_model = self._wrapper.WorldModel(encoder=None, predictor=self.predictor,
                                               tokens_per_frame=self.tokens_per_frame, transform=None,
                                               mpc_args=args, device=str(context.device))
        return world_model.infer_next_action(context[:, None], state[:, None], goal[:, None])
