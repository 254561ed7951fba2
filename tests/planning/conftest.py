"""A linear world model whose L2 planning energy is quadratic in the actions, with a unique known optimum."""
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
