"""CEM, MPPI and gradient planners on a linear world model whose L2 energy is quadratic in the actions."""
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from planning import official_cem
from planning.cem import CEMConfig, CEMPlanner
from planning.common import ActionSpace, latent_energy
from planning.gradient import GradientConfig, GradientPlanner
from planning.mppi import MPPIConfig, MPPIPlanner

ROOT = Path(__file__).resolve().parents[2]


def _reached_error(model, context, goal, actions):
    """Mean absolute latent error at the end of the planned sequence (0 = goal reached exactly)."""
    return float((model.goal_after(context, actions) - goal).abs().mean())


PLANNERS = {
    "cem": lambda: CEMPlanner(CEMConfig(samples=200, topk=20, iterations=15, energy="l2")),
    "mppi": lambda: MPPIPlanner(MPPIConfig(samples=200, iterations=15, energy="l2")),
    "gradient": lambda: GradientPlanner(GradientConfig(iterations=150, lr=0.003, energy="l2")),
}


@pytest.mark.parametrize("name", PLANNERS)
def test_planner_reaches_quadratic_optimum(toy, name):
    model, context, state, goal, target = toy
    start_error = _reached_error(model, context, goal, torch.zeros(2, 7))
    result = PLANNERS[name]().plan(model, context, state, goal)
    assert result.actions.shape == (2, 7)
    assert torch.all(result.actions[:, 3:6] == 0), "rotation deltas are fixed to zero by default"
    error = _reached_error(model, context, goal, result.actions)
    assert error < 0.03 * start_error, (name, error, start_error)
    torch.testing.assert_close(result.actions, target, atol=3e-3, rtol=0)  # the unique optimum
    diag = result.diagnostics
    assert diag["energy_min"][-1] < 0.05 * diag["energy_min"][0]
    assert result.energies.shape[1] == (8 if name == "gradient" else 200)


@pytest.mark.parametrize("name", PLANNERS)
def test_planner_is_seeded_and_leaves_global_rng_alone(toy, name):
    model, context, state, goal, _ = toy
    rng_before = torch.get_rng_state()
    first = PLANNERS[name]().plan(model, context, state, goal)
    assert torch.equal(torch.get_rng_state(), rng_before)
    second = PLANNERS[name]().plan(model, context, state, goal)
    assert torch.equal(first.actions, second.actions) and torch.equal(first.energies, second.energies)
    other = PLANNERS[name]()
    other.reset(seed=123)
    assert not torch.equal(other.plan(model, context, state, goal).energies, first.energies)


def test_cem_matches_official_semantics_bit_for_bit(toy):
    """Same seed -> same random numbers, same elites, same plan as the official recompute-the-prefix CEM."""
    official = official_cem
    model, context, state, goal, _ = toy

    def step(frames, actions, poses):  # the toy's next frame from the whole trajectory so far
        return model.rollout(frames[:, 0], poses[:, 0], actions)[:, -1:], poses[:, -1:]

    kwargs = {"rollout": 3, "cem_steps": 4, "samples": 50, "topk": 7, "maxnorm": 0.05, "momentum_mean": 0.2,
              "momentum_std": 0.9, "momentum_mean_gripper": 0.1, "momentum_std_gripper": 0.3}
    record = []
    torch.manual_seed(7)
    expected = official.official_cem(context[:, None], state[:, None], goal[:, None], step, record=record, **kwargs)

    cfg = CEMConfig(horizon=3, iterations=4, samples=50, topk=7, momentum_mean=0.2, momentum_std=0.9,
                    momentum_mean_gripper=0.1, momentum_std_gripper=0.3, seed=7)
    result = CEMPlanner(cfg).plan(model, context, state, goal)
    torch.testing.assert_close(result.energies, torch.stack(record), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(result.actions, expected[0], rtol=1e-5, atol=1e-7)


def test_cem_plan_rotation_uses_all_seven_dims(toy):
    model, context, state, goal, _ = toy
    space = ActionSpace(plan_rotation=True, max_rotation=0.05)
    target = torch.tensor([[0.02, 0.0, -0.01, 0.03, -0.02, 0.01, 0.0], [-0.01, 0.02, 0.0, 0.0, 0.01, -0.03, 0.0]])
    goal = model.goal_after(context, target)
    cfg = CEMConfig(samples=300, topk=20, iterations=20, energy="l2", action_space=space)
    result = CEMPlanner(cfg).plan(model, context, state, goal)
    torch.testing.assert_close(result.actions, target, atol=3e-3, rtol=0)


def test_cem_samples_stay_in_the_action_box(toy):
    model, context, state, goal, _ = toy
    seen = []

    class Spy:
        def rollout(self, latents, state, actions):
            seen.append(actions.clone())
            return model.rollout(latents, state, actions) * 100.0  # far goal: the box is binding

    CEMPlanner(CEMConfig(samples=64, iterations=3)).plan(Spy(), context, state, goal)
    actions = torch.cat(seen)
    assert actions[..., :3].abs().max() <= 0.05 + 1e-7
    assert actions[..., 6].abs().max() <= 0.75 + 1e-7
    assert torch.all(actions[..., 3:6] == 0)


def test_warm_start_starts_from_the_shifted_previous_plan(toy):
    model, context, state, goal, _ = toy
    cfg = CEMConfig(samples=100, topk=10, iterations=6, energy="l2", warm_start=True)
    planner = CEMPlanner(cfg)
    first = planner.plan(model, context, state, goal)
    planner.shift(1)
    warm = planner.initial_mean("cpu")
    assert torch.allclose(warm[0, :3], first.actions[1, :3]) and torch.all(warm[1] == 0)
    planner.config.warm_start = False
    assert torch.all(planner.initial_mean("cpu") == 0)
    planner.config.warm_start = True
    planner.reset()
    assert torch.all(planner.initial_mean("cpu") == 0)


def test_energy_summed_over_steps_scores_the_whole_path():
    preds = torch.zeros(2, 3, 4, 5)
    preds[0, 0] = 1.0  # sample 0 is off only at the first step
    goal = torch.zeros(1, 4, 5)
    assert torch.equal(latent_energy(preds, goal, "l1", "last"), torch.zeros(2))
    assert torch.equal(latent_energy(preds, goal, "l1", "all"), torch.tensor([1.0, 0.0]))
    preds[1, -1] = 2.0
    assert torch.equal(latent_energy(preds, goal, "l2", "last"), torch.tensor([0.0, 4.0]))
    with pytest.raises(ValueError, match="kind must be one of"):
        latent_energy(preds, goal, "l3")
    with pytest.raises(ValueError, match="goal must be"):
        latent_energy(preds, torch.zeros(1, 4, 6))


def test_gradient_planner_steps_the_optimizer(toy):
    """With one iteration and one start, the plan is the start; with more, Adam moves it downhill."""
    model, context, state, goal, _ = toy
    base = GradientConfig(samples=1, energy="l2", lr=0.002)
    one = GradientPlanner(replace(base, iterations=1)).plan(model, context, state, goal)
    many = GradientPlanner(replace(base, iterations=40)).plan(model, context, state, goal)
    assert one.diagnostics["energy_min"][-1] < one.diagnostics["energy_min"][0]  # the single step helped
    assert many.best_energy < 0.1 * one.diagnostics["energy_min"][0]
    assert all(g > 0 for g in many.diagnostics["grad_norm"])


def test_planner_rejects_bad_shapes(toy):
    model, context, state, goal, _ = toy
    with pytest.raises(ValueError, match="state must be"):
        CEMPlanner().plan(model, context, torch.zeros(1, 6), goal)
    with pytest.raises(ValueError, match="goal latents must match"):
        MPPIPlanner().plan(model, context, state, goal[..., :3])
    with pytest.raises(ValueError, match="topk must be"):
        CEMConfig(samples=5, topk=10)


def test_cem_early_exit_stops_once_the_sampling_std_has_converged(toy):
    model, context, state, goal, target = toy
    full = CEMPlanner(CEMConfig(samples=200, topk=10, iterations=30, energy="l2")).plan(model, context, state, goal)
    assert full.energies.shape[0] == 30  # off by default: every iteration runs, as upstream
    early = CEMPlanner(CEMConfig(samples=200, topk=10, iterations=30, energy="l2", stop_std=2e-3)).plan(
        model, context, state, goal)
    ran = early.energies.shape[0]
    assert 1 < ran < 30
    # an early exit is the same search cut short: the first `ran` iterations are those of the full run
    torch.testing.assert_close(early.energies, full.energies[:ran], rtol=0, atol=0)
    truncated = CEMPlanner(CEMConfig(samples=200, topk=10, iterations=ran, energy="l2")).plan(model, context, state, goal)
    assert torch.equal(early.actions, truncated.actions)
    torch.testing.assert_close(early.actions, target, atol=3e-3, rtol=0)  # and it has converged to the optimum
    with pytest.raises(ValueError, match="stop_std"):
        CEMConfig(stop_std=0.0)
