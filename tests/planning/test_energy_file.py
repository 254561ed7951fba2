"""Planning energies saved as files (vjepa_ac.energy_file) and loaded by vjepa-evaluate / vjepa-deploy."""
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import envs  # noqa: F401  (registers the Franka tasks)
from planning.cem import CEMConfig, CEMPlanner
from planning.energy import LatentDistance, StateHeadEnergy
from planning.evaluate import energy_landscape
from planning.mpc import MPC
from vjepa_ac import ac_train, runtime
from vjepa_ac.cli import evaluate
from vjepa_ac.config import ConfigError
from vjepa_ac.energy_file import EnergyConfig, load_energy, read_energy, save_energy
from vjepa_ac.runtime import VJEPAWorldModel
from vjepa_ac.state_head import StateHead, save_state_head


def _head(tokens=4, dim=8, seed=0):
    torch.manual_seed(seed)
    head = StateHead(tokens, dim, token_dim=4, hidden=16)
    head.target_mean.copy_(torch.tensor([0.5, 0.0, 0.3]))
    return head.eval().requires_grad_(False)


def _bundle(folder, head, **fields):
    """energy.yaml naming head.pt beside it (as the demo writes them)."""
    save_state_head(head, folder / "head.pt")
    return save_energy(EnergyConfig(head="head.pt", **fields), folder / "energy.yaml")


def test_round_trip_gives_the_in_process_energy(tmp_path):
    head = _head()
    path = _bundle(tmp_path, head, kind="l1", steps="all", latent_weight=0.5, head_weight=10.0)
    assert read_energy(path) == EnergyConfig(kind="l1", steps="all", latent_weight=0.5, head_weight=10.0,
                                             head="head.pt")
    loaded = load_energy(path)
    preds, goal = torch.randn(6, 2, 4, 8), torch.randn(1, 4, 8)
    expected = StateHeadEnergy(head, head_weight=10.0, latent_weight=0.5, steps="all")(preds, goal)
    assert torch.equal(loaded(preds, goal), expected)
    assert torch.equal(load_energy(path, steps="last")(preds, goal),
                       StateHeadEnergy(head, head_weight=10.0, latent_weight=0.5)(preds, goal))
    other = _head(seed=1)
    save_state_head(other, tmp_path / "other.pt")
    assert torch.equal(load_energy(path, head=tmp_path / "other.pt")(preds, goal),
                       StateHeadEnergy(other, head_weight=10.0, latent_weight=0.5, steps="all")(preds, goal))
    # no head term: the plain latent distance, no head file needed
    plain = save_energy(EnergyConfig(kind="l2", steps="all"), tmp_path / "plain.yaml")
    assert load_energy(plain) == LatentDistance("l2", "all")


@pytest.mark.parametrize(("text", "message"), [
    ("kind: l3", r"energy.yaml: kind: expected one of \['l1', 'l2'\], got 'l3'"),
    ("steps: first", "energy.yaml: steps: expected one of"),
    ("head_weight: -1", "energy.yaml: head_weight: expected a finite number >= 0, got -1"),
    ("latent_weight: 0", r"energy.yaml: latent_weight \+ head_weight: expected > 0, got 0"),
    ("format: other/1", "energy.yaml: format: expected 'vjepa_ac.energy/1', got 'other/1'"),
    ("temperature: 2", "energy.yaml: .*temperature"),
    ("head_weight: 3", "energy.yaml: head: expected a state-head checkpoint"),
    ("[1, 2]", "energy.yaml: expected a YAML mapping"),
])
def test_bad_energy_files_name_file_and_field(tmp_path, text, message):
    path = tmp_path / "energy.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message):
        load_energy(path)


def test_missing_and_wrong_head_files_are_one_line(tmp_path):
    path = tmp_path / "energy.yaml"
    path.write_text("head_weight: 3\nhead: nothere.pt\n")
    with pytest.raises(FileNotFoundError, match="nothere.pt: no such checkpoint file"):
        load_energy(path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "nothere.pt")
    with pytest.raises(KeyError, match="nothere.pt: not a state-head checkpoint: missing keys"):
        load_energy(path)
    with pytest.raises(FileNotFoundError, match="missing.yaml: no such energy file"):
        load_energy(tmp_path / "missing.yaml")


@pytest.mark.parametrize(("argv", "message"), [
    (["--energy", "nofile.yaml"], "--energy: expected l1, l2 or an energy file (YAML), got 'nofile.yaml'"),
    (["--energy", "l1", "--head", "head.pt"], "--head: expected --energy FILE with head_weight > 0"),
])
def test_evaluate_energy_flag_errors(tmp_path, capsys, argv, message):
    assert evaluate.main(["--checkpoint", "x.pt", "--out", str(tmp_path / "e"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A random-weight AC checkpoint of the project's layout (the ac-smoke architecture)."""
    torch.manual_seed(0)
    cfg = ac_train.load_ac_config("ac-smoke")
    encoder = runtime.build_encoder(ac_train.encoder_spec(cfg))
    predictor = runtime.build_predictor(ac_train.predictor_spec(cfg, encoder.embed_dim))
    path = tmp_path_factory.mktemp("ckpt") / "ac.pt"
    torch.save({"encoder": encoder.state_dict(), "predictor": predictor.state_dict(),
                "config": ac_train.checkpoint_config(cfg, encoder, {}, None)}, path)
    return path


def test_evaluate_with_an_energy_file_scores_like_the_in_process_energy(tmp_path, tiny_checkpoint):
    """vjepa-evaluate --energy FILE: its energy landscape (one-step predictions over a grid of actions) equals
    the one the same world model, planner and head energy give in this process."""
    wm = VJEPAWorldModel.from_checkpoint(tiny_checkpoint)
    tokens, dim = wm.encode(np.zeros((1, 32, 32, 3), dtype=np.uint8)).shape[1:]
    head = _head(tokens, dim)
    path = _bundle(tmp_path, head, steps="all", head_weight=10.0)
    out = tmp_path / "eval"
    assert evaluate.main(["--checkpoint", str(tiny_checkpoint), "--energy", str(path), "--episodes", "1",
                          "--max-steps", "1", "--samples", "8", "--topk", "2", "--iterations", "1", "--videos",
                          "0", "--landscape-grid", "3", "--env-options", "{image_size: 32}", "--seed", "7",
                          "--threads", "1", "--out", str(out)]) == 0
    from_cli = json.loads((out / "energy_landscape.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert report["energy"] == str(path)

    energy = StateHeadEnergy(head, head_weight=10.0, latent_weight=1.0, steps="all")
    mpc = MPC(wm, CEMPlanner(CEMConfig(samples=8, topk=2, iterations=1), energy=energy))
    env = gym.make("FrankaReach-v0", image_size=32)
    in_process = energy_landscape(env, mpc, seed=7, grid=3)
    env.close()
    assert np.isfinite(in_process["energies"]).all()
    np.testing.assert_allclose(from_cli["energies"], in_process["energies"], rtol=1e-6)
    plain = LatentDistance("l1", "all")
    mpc.planner.energy = plain  # a different energy gives a different landscape: the file's head term counted
    env = gym.make("FrankaReach-v0", image_size=32)
    assert not np.allclose(energy_landscape(env, mpc, seed=7, grid=3)["energies"], from_cli["energies"])
    env.close()


def test_energy_file_is_plain_yaml(tmp_path):
    path = _bundle(tmp_path, _head(), head_weight=2.0)
    assert yaml.safe_load(path.read_text()) == {"format": "vjepa_ac.energy/1", "kind": "l1", "steps": "last",
                                                 "latent_weight": 1.0, "head_weight": 2.0, "head": "head.pt"}
