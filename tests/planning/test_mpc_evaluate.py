"""MPC loop, oracle world model and the evaluation report on a tiny point-reach stand-in env."""
import json

import numpy as np
import pytest
import torch

from droid_data.conventions import integrate_actions
from planning.cem import CEMConfig, CEMPlanner
from planning.evaluate import energy_landscape, evaluate, save_video, side_by_side, wilson_interval
from planning.gradient import GradientConfig, GradientPlanner
from planning.mpc import MPC, run_controller, run_episode
from planning.mppi import MPPIConfig, MPPIPlanner
from planning.world_model import OracleWorldModel, WorldModel


def small_cem(**kw):
    return CEMPlanner(CEMConfig(horizon=2, samples=64, topk=8, iterations=4, **kw))


def test_oracle_world_model_integrates_actions_and_refuses_images():
    wm = OracleWorldModel()
    assert isinstance(wm, WorldModel)
    state = torch.tensor([[0.4, 0.0, 0.3, 0.1, -0.2, 0.3, 0.5]])
    actions = torch.randn(5, 3, 7) * 0.05
    preds = wm.rollout(wm.encode_states(state), state, actions)
    assert preds.shape == (5, 3, 1, 3)
    torch.testing.assert_close(preds[:, :, 0], integrate_actions(state.expand(5, 7), actions)[:, 1:, :3])
    torch.testing.assert_close(preds[:, -1, 0], state[:, :3] + actions[:, :, :3].sum(1))
    with pytest.raises(TypeError, match="no image encoder"):
        wm.encode(np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="batch of latents"):
        wm.rollout(torch.zeros(2, 1, 3), torch.zeros(2, 7), actions)


@pytest.mark.parametrize("make_planner", [
    small_cem,
    lambda: MPPIPlanner(MPPIConfig(horizon=2, samples=64, iterations=4)),
    lambda: GradientPlanner(GradientConfig(horizon=2, samples=4, iterations=15, lr=0.01)),
])
def test_oracle_mpc_reaches_goals(point_env, make_planner):
    mpc = MPC(OracleWorldModel(), make_planner(), oracle=True)
    results = [run_episode(point_env, mpc, seed=s) for s in range(4)]
    assert all(r.success for r in results), [(r.steps, r.final_distance) for r in results]
    assert all(r.final_distance < 0.04 for r in results)


def test_random_actions_do_not_reach(point_env):
    """The success check above is not trivially met: zero-information planning fails."""

    class Blind:
        def rollout(self, latents, state, actions):
            return torch.zeros(actions.shape[0], actions.shape[1], 1, 3)

        def encode_states(self, states):
            return torch.zeros(1, 1, 3)

    mpc = MPC(OracleWorldModel(), small_cem(), oracle=True)
    mpc.world_model = Blind()
    assert sum(run_episode(point_env, mpc, seed=s).success for s in range(4)) <= 1


def test_mpc_executes_k_actions_and_warm_starts(point_env):
    planner = small_cem(warm_start=True)
    mpc = MPC(OracleWorldModel(), planner, execute=2, oracle=True)
    result = run_episode(point_env, mpc, seed=0, max_steps=4)
    assert result.steps <= 4 and len(result.plan_seconds) == (result.steps + 1) // 2
    with pytest.raises(ValueError, match="execute must be in"):
        MPC(OracleWorldModel(), planner, execute=3, oracle=True)


def test_image_mode_never_sees_the_goal_state(point_env):
    """In image mode the goal comes from the goal image; a goal state is refused."""
    seen = {}

    class PixelModel:  # latents = the image itself, rollout = no motion
        def encode(self, images):
            seen.setdefault("images", []).append(images)
            return torch.as_tensor(images).float().flatten(1)[:, None]

        def rollout(self, latents, state, actions):
            return latents[:, None].expand(actions.shape[0], actions.shape[1], -1, -1)

    mpc = MPC(PixelModel(), small_cem())
    _, info = point_env.reset(seed=0)
    with pytest.raises(ValueError, match="only accepted in oracle mode"):
        mpc.set_goal(info["goal_rgb"], oracle_goal_state=info["goal_state"])
    run_episode(point_env, mpc, seed=0, max_steps=2)
    assert all(im.dtype == np.uint8 and im.shape == (1, 16, 16, 3) for im in seen["images"])
    with pytest.raises(TypeError, match="needs an OracleWorldModel"):
        MPC(PixelModel(), small_cem(), oracle=True)


def test_run_controller_stops_on_budget_and_callback(point_env):
    class Controller:  # FrankaController-like: observe() / step(action)
        def __init__(self, env):
            self.env = env
            self.obs, self.info = env.reset(seed=1)

        def observe(self, images=True):
            return self.obs

        def step(self, action):
            self.obs, *_ = self.env.step(action)
            return action

    controller = Controller(point_env)
    goal_state = point_env.goal_state.copy()

    class PixelModel:
        def encode(self, images):
            return torch.as_tensor(images).float().flatten(1)[:, None]

        def rollout(self, latents, state, actions):
            return latents[:, None].expand(actions.shape[0], actions.shape[1], -1, -1)

    mpc = MPC(PixelModel(), small_cem())
    logged = []
    result = run_controller(controller, mpc, point_env.goal_rgb, max_steps=3,
                            on_step=lambda obs, a, r: logged.append(a))
    assert result.steps == 3 and len(logged) == 3
    def near(obs):
        return np.linalg.norm(obs["state"][:3] - goal_state[:3]) < 10.0

    assert run_controller(controller, mpc, point_env.goal_rgb, max_steps=3, stop=near).steps == 0


@pytest.mark.parametrize("k, n", [(29, 30), (0, 10), (10, 10), (17, 40)])
def test_wilson_interval_matches_scipy(k, n):
    from scipy.stats import binomtest

    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k, n)
    assert abs(low - expected.low) < 1e-6 and abs(high - expected.high) < 1e-6


def test_wilson_interval_rejects_bad_counts():
    with pytest.raises(ValueError, match="successes must be in"):
        wilson_interval(11, 10)


def test_evaluate_writes_report_videos_and_landscape(tmp_path, point_env):
    mpc = MPC(OracleWorldModel(), small_cem(), oracle=True)
    report = evaluate(lambda: point_env, mpc, episodes=3, seed=5, out_dir=tmp_path, videos=1, progress=False,
                      metadata={"task": "point"})
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert report["task"] == "point" and report["oracle_mode"] is True
    assert report["successes"] == sum(e["success"] for e in report["per_episode"]) == 3
    assert report["success_ci95"] == list(wilson_interval(3, 3))
    assert report["final_distance_m"]["mean"] < 0.04
    assert report["planning_seconds_per_action"]["mean"] > 0
    assert (tmp_path / "episode_000.mp4").stat().st_size > 0 and not (tmp_path / "episode_001.mp4").exists()
    assert (tmp_path / "energy_landscape.png").stat().st_size > 0
    # the oracle's landscape has its minimum at the grid point nearest the true action
    assert report["energy_landscape_argmin_error_m"] < 0.0375 * 3 ** 0.5


def test_energy_landscape_minimum_is_at_the_true_action(point_env):
    mpc = MPC(OracleWorldModel(), small_cem(), oracle=True)
    land = energy_landscape(point_env, mpc, seed=0, grid=5, extent=0.04, true_action=[0.02, -0.02, 0.0] + [0] * 4)
    assert land["argmin_error_m"] < 1e-6
    energies = np.asarray(land["energies"])
    assert energies.shape == (5, 5, 5) and energies.max() > energies.min()


def test_videos_place_observation_beside_goal(tmp_path):
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    goal = np.full((8, 8, 3), 200, np.uint8)
    pair = side_by_side(frames, goal)
    assert pair.shape == (3, 8, 16, 3) and pair[:, :, 8:].min() == 200 and pair[:, :, :8].max() == 0
    from droid_data.video import decode_frames

    decoded = decode_frames(save_video(tmp_path / "v.mp4", pair))
    assert decoded.shape == (3, 8, 16, 3) and abs(int(decoded[0, 4, 12, 0]) - 200) < 10
    assert save_video(tmp_path / "v.gif", pair).stat().st_size > 0
    with pytest.raises(ValueError, match="expected a .mp4 or .gif"):
        save_video(tmp_path / "v.avi", pair)


def test_oracle_cem_mpc_solves_franka_reach():
    """Small version of the acceptance run (scripts/evaluate.py --world-model oracle, 50 episodes: 50/50)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers FrankaReach-v0)

    env = gym.make("FrankaReach-v0")
    mpc = MPC(OracleWorldModel(), CEMPlanner(CEMConfig(samples=100, topk=10, iterations=5)), oracle=True)
    results = [run_episode(env, mpc, seed=100 + i) for i in range(6)]
    env.close()
    assert sum(r.success for r in results) == 6, [(r.steps, r.final_distance) for r in results]
    assert all(r.final_distance < 0.04 for r in results)


class GoalRecorder:
    """World model + planner stand-ins: latents = mean pixel value; the planner records the goal of every
    plan and the step at which it was asked, and plans a small fixed move (never reaching the goal)."""

    def __init__(self, horizon=2):
        from planning.cem import CEMConfig

        self.config = CEMConfig(horizon=horizon)
        self.goals = []

    def encode(self, images):
        return torch.as_tensor(np.asarray(images), dtype=torch.float32).mean(dim=(1, 2, 3))[:, None, None]

    def reset(self, seed=None):
        pass

    def shift(self, executed):
        pass

    def plan(self, wm, context, state, goal):
        from planning.common import PlanResult

        self.goals.append(round(float(goal.flatten()[0])))
        actions = torch.zeros(self.config.horizon, 7)
        actions[:, 0] = 0.001
        return PlanResult(actions=actions, energies=torch.zeros(1, 1))


@pytest.mark.parametrize("execute", [1, 2])
def test_mpc_follows_the_sub_goal_schedule_by_step_count(execute, staged_env):
    recorder = GoalRecorder()
    mpc = MPC(recorder, recorder, execute=execute)
    result = run_episode(staged_env(), mpc, seed=0, record_frames=True)
    assert result.steps == 9
    # the goal planned toward at each executed step: sub-goal 1 for 3 steps, sub-goal 2 for 2, then the goal
    assert [round(float(g[0, 0, 0])) for g in result.goal_frames[1:]] == [10] * 3 + [20] * 2 + [250] * 4
    if execute == 1:
        assert recorder.goals == [10] * 3 + [20] * 2 + [250] * 4
    else:  # plans of 2 actions are cut at each boundary: 2+1 steps, 2 steps, then 2+2
        assert recorder.goals == [10, 10, 20, 250, 250]
    assert [(s["name"], s["first_step"], s["scheduled_steps"], s["executed_steps"]) for s in result.stages] == [
        ("subgoal_1", 0, 3, 3), ("subgoal_2", 3, 2, 2), ("goal", 5, None, 4)]
    assert [s["reached"] for s in result.stages] == [False, True, False]  # from info["subgoal_success"]
    assert result.plan_stages == sorted(result.plan_stages) and result.plan_stages[-1] == 2


def test_oracle_mode_follows_the_sub_goal_states(staged_env):
    seen = []

    class Oracle(OracleWorldModel):
        def encode_states(self, states):
            seen.append(np.asarray(states).flatten()[0].round(3))
            return super().encode_states(states)

    mpc = MPC(Oracle(), small_cem(), oracle=True)
    run_episode(staged_env(), mpc, seed=0, max_steps=7)
    goals = [v for v in seen if v in (np.float32(0.1).round(3), np.float32(0.2).round(3))]
    assert goals[:2] == [np.float32(0.1).round(3), np.float32(0.2).round(3)]


def test_pick_place_schedule_switches_at_steps_16_and_28():
    import gymnasium as gym

    import envs  # noqa: F401  (registers FrankaPickPlace-v0)

    recorder = GoalRecorder()
    env = gym.make("FrankaPickPlace-v0", image_size=16)
    result = run_episode(env, MPC(recorder, recorder), seed=0, max_steps=30)
    env.close()
    assert [(s["name"], s["first_step"]) for s in result.stages] == [("subgoal_1", 0), ("subgoal_2", 16),
                                                                      ("goal", 28)]
    assert result.stages[0]["reached"] is False  # planning nothing useful does not grasp the cube
    assert len(set(recorder.goals[:16])) == 1 and recorder.goals[16] != recorder.goals[15]


def test_evaluate_reports_stages_and_shows_the_sub_goal_in_videos(tmp_path, staged_env):
    recorder = GoalRecorder()
    report = evaluate(staged_env, MPC(recorder, recorder), episodes=2, seed=0, out_dir=tmp_path, videos=1,
                      landscape=False, progress=False)
    assert report["stage_reached_rate"]["subgoal_2"] == {"episodes": 2, "reached": 2, "rate": 1.0}
    assert report["stage_reached_rate"]["subgoal_1"]["rate"] == 0.0
    assert [s["name"] for s in report["per_episode"][0]["stages"]] == ["subgoal_1", "subgoal_2", "goal"]
    from droid_data.video import decode_frames

    video = decode_frames(tmp_path / "episode_000.mp4")  # right half: the goal planned toward
    assert abs(int(video[1, 8, 24, 0]) - 10) < 8 and abs(int(video[-1, 8, 24, 0]) - 250) < 8
