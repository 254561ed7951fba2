"""Planning energies, planners taking an energy object, landscape metrics, reference policies, the state head."""
import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401
from planning.cem import CEMConfig, CEMPlanner
from planning.common import latent_energy
from planning.energy import LatentDistance, StateHeadEnergy
from planning.landscape import goal_distance_correlation, pixel_latents, straight_path
from planning.policy_eval import UniformRandomPolicy, evaluate_policy
from planning.world_model import OracleWorldModel
from vjepa_ac.state_head import StateHead, fit_state_head, load_state_head, save_state_head


def first_token(latents):  # a "head" reading positions straight out of oracle latents [B, 1, 3]
    return latents[:, 0, :]


def test_latent_distance_is_the_default_energy():
    preds, goal = torch.randn(5, 2, 4, 3), torch.randn(1, 4, 3)
    assert torch.allclose(LatentDistance()(preds, goal), latent_energy(preds, goal))
    assert torch.allclose(LatentDistance("l2", "all")(preds, goal), latent_energy(preds, goal, "l2", "all"))


def test_state_head_energy_is_weighted_sum_of_distances():
    preds, goal = torch.randn(6, 2, 1, 3), torch.randn(1, 1, 3)
    energy = StateHeadEnergy(first_token, head_weight=3.0, latent_weight=0.5)
    expected = 0.5 * latent_energy(preds, goal) + 3.0 * (preds[:, -1, 0] - goal[:, 0]).norm(dim=-1)
    assert torch.allclose(energy(preds, goal), expected)
    all_steps = StateHeadEnergy(first_token, head_weight=1.0, latent_weight=0.0, steps="all")(preds, goal)
    assert torch.allclose(all_steps, (preds[:, :, 0] - goal[:, None, 0]).norm(dim=-1).sum(1))
    with pytest.raises(ValueError, match="weights"):
        StateHeadEnergy(first_token, head_weight=0.0, latent_weight=0.0)


def test_planner_minimises_the_energy_it_is_given():
    """With an energy that only rewards moving +x, CEM moves +x whatever the goal latent says."""
    wm = OracleWorldModel()
    state = torch.zeros(1, 7)
    context = wm.encode_states(state)

    def plus_x(preds, goal):
        return -preds[:, -1, 0, 0]

    plan = CEMPlanner(CEMConfig(samples=64, topk=8, iterations=3), energy=plus_x).plan(wm, context, state, context)
    assert plan.actions[:, 0].min() > 0.03
    default = CEMPlanner(CEMConfig(samples=64, topk=8, iterations=3)).plan(wm, context, state, context)
    assert default.actions[:, 0].abs().max() < 0.03  # the default energy keeps it at the goal = start


def test_correlation_is_one_for_a_metric_energy_and_low_for_noise():
    rng = np.random.default_rng(0)
    positions = rng.uniform(-0.2, 0.2, size=(200, 3))
    latents = torch.tensor(positions, dtype=torch.float32)[:, None]
    metric = StateHeadEnergy(first_token, head_weight=1.0, latent_weight=0.0)
    assert goal_distance_correlation(latents, positions, metric, goals=10, others=50)["spearman_mean"] > 0.999
    noise = torch.randn(200, 4, 8)
    assert abs(goal_distance_correlation(noise, positions, LatentDistance(), goals=10, others=50)["spearman_mean"]) < 0.3


def test_straight_path_pixels_energy_falls_toward_goal():
    env = gym.make("FrankaReach-v0", image_size=32)
    result = straight_path(env, {"pixels": (pixel_latents, LatentDistance())}, seeds=[3], points=6)
    env.close()
    assert result["distance_m"][0] > 0.07 and result["distance_m"][-1] < 0.03
    assert result["pixels"]["relative_energy"][0] == pytest.approx(1.0)
    assert result["pixels"]["relative_energy"][-1] < 0.8
    assert len(result["pixels"]["relative_energy"]) == 6


def test_reference_policies():
    make_env = lambda: gym.make("FrankaReach-v0", image_size=32)
    from envs.policies import make_policy

    oracle = evaluate_policy(make_env, make_policy("reach", "oracle"), 3, seed=5, progress=False)
    assert oracle["successes"] == 3 and oracle["final_distance_m"]["mean"] < 0.04
    random = UniformRandomPolicy()
    random.reset(np.random.default_rng(0))
    actions = np.stack([random({}, {}) for _ in range(200)])
    assert np.abs(actions[:, :3]).max() <= 0.05 and np.all(actions[:, 3:] == 0)
    assert actions[:, :3].std() > 0.02
    short = evaluate_policy(make_env, random, 2, seed=5, max_steps=3, progress=False)
    assert all(e["steps"] <= 3 for e in short["per_episode"])


def test_state_head_learns_positions_and_round_trips(tmp_path):
    gen = torch.Generator().manual_seed(0)
    positions = torch.rand(600, 3, generator=gen) * 0.3
    mixing = torch.randn(3, 8 * 4, generator=gen)
    latents = (positions @ mixing).reshape(600, 4, 8) + 0.01 * torch.randn(600, 4, 8, generator=gen)
    head = StateHead(tokens=4, dim=8, token_dim=8, hidden=64)
    report = fit_state_head(head, latents, positions, groups=np.arange(600) // 20, steps=300)
    baseline = (positions - positions.mean(0)).square().mean().sqrt().item()
    assert report.val_rmse < 0.25 * baseline
    save_state_head(head, tmp_path / "head.pt")
    loaded = load_state_head(tmp_path / "head.pt")
    assert torch.equal(loaded(latents[:5]), head(latents[:5]))
    with pytest.raises(ValueError, match=r"\[B, 4, 8\]"):
        head(torch.zeros(2, 5, 8))
