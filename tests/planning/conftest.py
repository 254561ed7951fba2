"""A linear world model whose L2 planning energy is quadratic in the actions, with a unique known optimum."""
import numpy as np
import pytest
import torch


class LinearToyModel:
    """latent_{t+1} = latent_t @ A + action_t @ M in 14-D; the state is carried but unused.

    In a random orthonormal basis Q, M writes the 7 action dims (x10) into the first half of the latent and A
    swaps the halves. The final latent of a 2-step plan therefore holds both actions, well conditioned, and
    the L2 energy to a goal has exactly one minimum: the plan that produced the goal.
    """

    def __init__(self, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        basis = torch.linalg.qr(torch.randn(14, 14, generator=gen))[0]
        swap = torch.roll(torch.eye(14), 7, dims=1)
        self.transition = basis.T @ swap @ basis
        self.mix = 10.0 * torch.eye(7, 14) @ basis

    def rollout(self, latents, state, actions):
        z = latents.expand(actions.shape[0], -1, -1)  # [S, 1, D]
        preds = []
        for t in range(actions.shape[1]):
            z = z @ self.transition + (actions[:, t] @ self.mix)[:, None]
            preds.append(z)
        return torch.stack(preds, dim=1)

    def goal_after(self, latents, actions):
        """Latents reached from `latents` [1, 1, D] by the action sequence `actions` [H, 7]."""
        return self.rollout(latents, None, actions[None])[:, -1]


@pytest.fixture
def toy():
    model = LinearToyModel()
    context = torch.randn(1, 1, 14)
    state = torch.zeros(1, 7)
    target = torch.tensor([[0.03, -0.02, 0.01, 0.0, 0.0, 0.0, 0.0], [0.02, 0.01, -0.03, 0.0, 0.0, 0.0, 0.0]])
    goal = model.goal_after(context, target)
    return model, context, state, goal, target


class PointReachEnv:
    """A tiny stand-in for an `envs` task (same obs/info fields): a point moved by the xyz of DROID deltas.

    The commanded delta is clipped to 5 cm per axis, like a real controller's per-step clamp; success within
    4 cm of a goal 10-25 cm away. Images are 16x16 with the point drawn as a bright pixel.
    """

    def __init__(self, max_steps: int = 20):
        import numpy as np

        self.np, self.max_steps = np, max_steps
        self.unwrapped = self

    def _image(self, state):
        np = self.np
        img = np.zeros((16, 16, 3), dtype=np.uint8)
        i, j = (np.clip((state[:2] + 0.4) / 0.8 * 15, 0, 15)).astype(int)
        img[i, j] = 255
        return img

    def _obs(self):
        return {"rgb": self._image(self.state), "state": self.state.astype(self.np.float32),
                "joints": self.np.zeros(7, self.np.float32)}

    def _info(self):
        distance = float(self.np.linalg.norm(self.state[:3] - self.goal_state[:3]))
        return {"goal_rgb": self.goal_rgb, "goal_state": self.goal_state.astype(self.np.float32),
                "is_success": distance < 0.04, "distance": distance}

    def reset(self, seed=None):
        np = self.np
        rng = np.random.default_rng(seed)
        self.state = np.zeros(7)
        self.state[:3] = rng.uniform(-0.1, 0.1, 3)
        direction = rng.normal(size=3)
        self.goal_state = self.state.copy()
        self.goal_state[:3] += direction / np.linalg.norm(direction) * rng.uniform(0.1, 0.25)
        self.goal_rgb = self._image(self.goal_state)
        self.steps = 0
        return self._obs(), self._info()

    def step(self, action):
        self.state[:3] += self.np.clip(self.np.asarray(action)[:3], -0.05, 0.05)
        self.steps += 1
        info = self._info()
        return self._obs(), -info["distance"], False, self.steps >= self.max_steps, info

    def close(self):
        pass


@pytest.fixture
def point_env():
    return PointReachEnv()


class StagedPointEnv:
    """A point env with two sub-goal images (as FrankaPickPlace-v0 gives them): pixel value 10 * (stage + 1)
    marks sub-goal images, 250 the final goal; `subgoal_steps` = [3, 2], budget 9."""

    def __init__(self):
        self.inner = PointReachEnv(max_steps=9)

    def _add(self, info):
        info["subgoal_rgbs"] = [np.full((16, 16, 3), 10 * (k + 1), np.uint8) for k in range(2)]
        info["subgoal_steps"] = [3, 2]
        info["subgoal_states"] = [np.full(7, 0.1 * (k + 1), np.float32) for k in range(2)]
        info["subgoal_success"] = [False, True]
        info["goal_rgb"] = np.full((16, 16, 3), 250, np.uint8)
        return info

    def reset(self, seed=None):
        obs, info = self.inner.reset(seed)
        return obs, self._add(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.inner.step(action)
        return obs, reward, terminated, truncated, self._add(info)

    def close(self):
        pass


@pytest.fixture
def staged_env():
    """A factory of StagedPointEnv (point env with two sub-goals on a [3, 2] step schedule)."""
    return StagedPointEnv
