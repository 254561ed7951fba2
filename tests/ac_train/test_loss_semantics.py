"""What the AC loss feeds the predictor and compares against (toy predictor with exact, known dynamics).

The released V-JEPA 2-AC training code built the second rollout step's context from ground-truth frame 0
and the teacher-forcing prediction of *frame 2* (``z_tf[:, N:2N]``) instead of frame 1 (``z_tf[:, :N]``),
and compared that pair with frames 1 and 2 (fixed upstream in vjepa2 commit 93366fe, "predict z_3 from z_1
and ẑ_2, not from z_1 and ẑ_3"; the public checkpoint was trained before the fix — the JEPA-WMs paper's
"bug in the loss"). These tests fail on that behaviour.
"""
import pytest
import torch

from droid_data.conventions import integrate_actions
from vjepa_ac.ac_train import ACObjective, teacher_forcing
from vjepa_ac.runtime import rollout


def _official_release_rollout_loss(predictor, h, actions, states, auto_steps):
    """The rollout term as the *released* vjepa2 code computed it (before commit 93366fe), for contrast."""
    b, t, n, d = h.shape
    flat = h.reshape(b, t * n, d)
    z_tf = predictor(flat[:, :-n], actions, states[:, :-1])
    ctx = torch.cat([flat[:, :n], z_tf[:, n:2 * n]], dim=1)  # the bug: prediction of frame 2 in frame 1's slot
    for k in range(1, auto_steps):
        nxt = predictor(ctx, actions[:, :k + 1], states[:, :k + 1])[:, -n:]
        ctx = torch.cat([ctx, nxt], dim=1)
    z_ar = ctx[:, n:]
    return (z_ar - flat[:, n:n + z_ar.shape[1]]).abs().mean()


@pytest.mark.parametrize("auto_steps", [1, 2, 3])
def test_exact_model_has_zero_loss(toy, auto_steps):
    states, actions = toy.random_trajectory(batch=3, frames=5)
    h = toy.latents_of(states)
    objective = ACObjective(toy.ToyPredictor(gain=1.0), auto_steps, loss_exp=1.0, normalize_reps=False)
    losses = objective(h, actions, states)
    assert losses["tf_loss"].item() < 1e-6
    assert losses["rollout_loss"].item() < 1e-6


def test_released_official_rollout_term_is_wrong_for_an_exact_model(toy):
    """Sanity check that the test above discriminates: the released rollout term is far from zero."""
    states, actions = toy.random_trajectory(batch=3, frames=5)
    h = toy.latents_of(states)
    buggy = _official_release_rollout_loss(toy.ToyPredictor(gain=1.0), h, actions, states, auto_steps=2)
    step_scale = (h[:, 1:] - h[:, :-1]).abs().mean()
    assert buggy.item() > 0.3 * step_scale.item()


def test_wrong_model_has_loss_and_gradient(toy):
    states, actions = toy.random_trajectory(batch=2, frames=4)
    h = toy.latents_of(states)
    predictor = toy.ToyPredictor(gain=0.5)
    losses = ACObjective(predictor, 2, loss_exp=1.0, normalize_reps=False)(h, actions, states)
    assert losses["tf_loss"].item() > 0 and losses["rollout_loss"].item() > 0
    losses["rollout_loss"].backward()
    assert predictor.gain.grad is not None and predictor.gain.grad.item() < 0  # more gain lowers the loss


def test_rollout_feeds_back_its_own_predictions_and_integrated_states(toy):
    states, actions = toy.random_trajectory(batch=2, frames=5)
    h = toy.latents_of(states)
    # Ground-truth states that disagree with the actions: the rollout must not look at them after frame 0.
    corrupted = states.clone()
    corrupted[:, 1:, :3] += 10.0
    predictor = toy.ToyPredictor(gain=0.7)
    preds = rollout(predictor, h[:, 0], corrupted[:, 0], actions, normalize_reps=False)
    assert preds.shape == (2, 4, 2, 3)
    expected_states = integrate_actions(states[:, 0], actions)
    for k, (_, tokens, action, state) in enumerate(predictor.calls):
        want_tokens = h[:, 0] if k == 0 else preds[:, k - 1]
        torch.testing.assert_close(tokens, want_tokens)
        torch.testing.assert_close(action, actions[:, k])
        torch.testing.assert_close(state, expected_states[:, k], atol=1e-5, rtol=0)
    assert len(predictor.calls) == 4


def test_rollout_gradients_flow_through_fed_back_latents(toy):
    states, actions = toy.random_trajectory(batch=1, frames=4)
    h0 = toy.latents_of(states[:, 0]).requires_grad_(True)
    preds = rollout(toy.ToyPredictor(gain=1.0), h0, states[:, 0], actions, normalize_reps=False)
    preds[:, -1].sum().backward()  # the last prediction depends on h0 only through the fed-back chain
    torch.testing.assert_close(h0.grad, torch.ones_like(h0))


def test_teacher_forcing_uses_ground_truth_frames_and_states(toy):
    states, actions = toy.random_trajectory(batch=2, frames=4)
    h = toy.latents_of(states)
    z = teacher_forcing(toy.ToyPredictor(gain=1.0), h[:, :-1], actions, states[:, :-1], normalize_reps=False)
    torch.testing.assert_close(z, h[:, 1:], atol=1e-6, rtol=0)


def test_loss_exp_and_layer_norm(toy):
    states, actions = toy.random_trajectory(batch=2, frames=4)
    h = toy.latents_of(states)
    predictor = toy.ToyPredictor(gain=0.3)
    l1 = ACObjective(predictor, 1, loss_exp=1.0, normalize_reps=False)(h, actions, states)
    l2 = ACObjective(predictor, 1, loss_exp=2.0, normalize_reps=False)(h, actions, states)
    z = teacher_forcing(predictor, h[:, :-1], actions, states[:, :-1], normalize_reps=False)
    torch.testing.assert_close(l1["tf_loss"], (z - h[:, 1:]).abs().mean())
    torch.testing.assert_close(l2["tf_loss"], ((z - h[:, 1:]) ** 2).mean() / 2)
    zn = teacher_forcing(predictor, h[:, :-1], actions, states[:, :-1], normalize_reps=True)
    torch.testing.assert_close(zn.mean(-1), torch.zeros(zn.shape[:-1]), atol=1e-5, rtol=0)


def test_bad_shapes_are_named(toy):
    states, actions = toy.random_trajectory(batch=2, frames=4)
    h = toy.latents_of(states)
    objective = ACObjective(toy.ToyPredictor(), 1, 1.0, False)
    with pytest.raises(ValueError, match=r"actions: expected \[B, T-1, 7\]"):
        objective(h, actions[:, :-1], states)
    with pytest.raises(ValueError, match=r"states: expected \[B, T, 7\]"):
        objective(h, actions, states[:, :-1])


def test_cached_rollout_equals_recomputing_the_prefix_with_the_real_predictor():
    """Values and gradients of the KV-cached rollout equal the official recompute-the-prefix rollout."""
    from vjepa_ac.models import vit_ac_predictor

    torch.manual_seed(0)
    predictor = vit_ac_predictor(img_size=32, patch_size=16, num_frames=16, tubelet_size=2, embed_dim=12,
                                 predictor_embed_dim=16, depth=2, num_heads=2)
    b, n, d, steps = 2, 4, 12, 3
    h0 = torch.nn.functional.layer_norm(torch.randn(b, n, d), (d,))
    state0, actions = torch.rand(b, 7), 0.05 * torch.randn(b, steps, 7)
    cached = rollout(predictor, h0, state0, actions, normalize_reps=True)
    params = [p for name, p in predictor.named_parameters() if not name.startswith("extrinsics_encoder")]
    grads_cached = torch.autograd.grad(cached.sum(), params)

    states = integrate_actions(state0, actions)
    context, outs = [h0], []
    for k in range(steps):
        out = predictor(torch.cat(context, 1), actions[:, :k + 1], states[:, :k + 1])[:, -n:]
        out = torch.nn.functional.layer_norm(out, (d,))
        outs.append(out)
        context.append(out)
    recomputed = torch.stack(outs, 1)
    grads_recomputed = torch.autograd.grad(recomputed.sum(), params)
    torch.testing.assert_close(cached, recomputed, atol=1e-5, rtol=1e-5)
    for a, b_ in zip(grads_cached, grads_recomputed):
        torch.testing.assert_close(a, b_, atol=1e-4, rtol=1e-4)
