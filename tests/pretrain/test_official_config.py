"""Official vjepa2 pretraining YAML files (`python -m app.main --fname FILE`) load as our grouped config."""
import pytest

from vjepa_ac.cli import pretrain as cli
from vjepa_ac.config import ConfigError
from vjepa_ac.pretrain import load_pretrain_config

# The layout of configs/train/vitg16/pretrain-256px-16f.yaml (keys as documented in the official repository),
# with one local folder of videos as its dataset.
OFFICIAL = """\
app: vjepa
nodes: 16
tasks_per_node: 8
cpus_per_task: 16
mem_per_gpu: 220G
folder: {out}
data:
  dataset_type: VideoDataset
  datasets: [{videos}]
  datasets_weights: [1.0]
  batch_size: 24
  crop_size: 256
  patch_size: 16
  dataset_fpcs: [16]
  tubelet_size: 2
  fps: 4
  num_workers: 8
  persistent_workers: true
  pin_mem: true
data_aug:
  auto_augment: false
  motion_shift: false
  random_resize_aspect_ratio: [0.75, 1.35]
  random_resize_scale: [0.3, 1.0]
  reprob: 0.0
loss:
  loss_exp: 1.0
mask:
- aspect_ratio: [0.75, 1.5]
  full_complement: false
  max_keep: null
  max_temporal_keep: 1.0
  num_blocks: 8
  spatial_scale: [0.15, 0.15]
  temporal_scale: [1.0, 1.0]
- aspect_ratio: [0.75, 1.5]
  full_complement: false
  max_keep: null
  max_temporal_keep: 1.0
  num_blocks: 2
  spatial_scale: [0.7, 0.7]
  temporal_scale: [1.0, 1.0]
meta:
  dtype: bfloat16
  eval_freq: 100
  load_checkpoint: true
  read_checkpoint: null
  save_every_freq: 50
  seed: 239
  use_sdpa: true
model:
  model_name: vit_giant_xformers
  pred_depth: 12
  pred_embed_dim: 384
  pred_num_heads: 12
  uniform_power: true
  use_activation_checkpointing: true
  use_mask_tokens: true
  use_rope: true
  zero_init_mask_tokens: true
optimization:
  ema: [0.99925, 0.99925]
  epochs: 800
  final_lr: 0.000525
  final_weight_decay: 0.04
  ipe: 300
  ipe_scale: 1.25
  lr: 0.000525
  start_lr: 0.0001
  warmup: 40
  weight_decay: 0.04
"""


@pytest.fixture
def official(tmp_path):
    (tmp_path / "videos").mkdir()
    path = tmp_path / "pretrain-256px-16f.yaml"
    path.write_text(OFFICIAL.format(out=tmp_path / "run", videos=tmp_path / "videos"))
    return path


def test_official_file_equals_our_vitg_preset(official, tmp_path):
    cfg = load_pretrain_config(official)
    ours = load_pretrain_config("vitg-pretrain-256px-16f")
    assert cfg.model.name == ours.model.name == "vit_giant_xformers"
    for group, names in {"model": ("patch_size", "tubelet_size", "use_rope", "predictor_embed_dim",
                                   "predictor_depth", "predictor_num_heads", "use_activation_checkpointing"),
                         "optim": ("lr", "start_lr", "final_lr", "warmup_epochs", "epochs", "steps_per_epoch",
                                   "weight_decay", "final_weight_decay", "ema_start", "ema_end", "lr_schedule"),
                         "data": ("batch_size", "crop_size", "frames_per_clip", "fps", "random_resized_crop",
                                  "aspect_ratio", "horizontal_flip", "source"),
                         "loss": ("loss", "loss_exp", "normalize_reps", "masks"),
                         "run": ("seed", "use_bfloat16", "save_every_epochs")}.items():
        for name in names:
            assert getattr(getattr(cfg, group), name) == getattr(getattr(ours, group), name), f"{group}.{name}"
    assert cfg.data.path == str(tmp_path / "videos") and cfg.run.out == str(tmp_path / "run")
    assert cfg.model.num_mask_tokens == 2  # 2 mask configs x 1 clip length, as the official app builds it


def test_official_file_through_the_cli_with_overrides(official, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--config", str(official), "--optim.lr", "3e-4", "--print-config"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "lr: 0.0003" in text and "name: vit_giant_xformers" in text and "steps_per_epoch: 300" in text


def test_unsupported_official_settings_are_named(official, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(official.read_text().replace("auto_augment: false", "auto_augment: true"))
    with pytest.raises(ConfigError, match="bad.yaml: data_aug.auto_augment: expected False, got True"):
        load_pretrain_config(bad)
    bad.write_text(official.read_text().replace("  pin_mem: true", "  pin_mem: true\n  shuffle_tubelets: true"))
    with pytest.raises(ConfigError, match="data.shuffle_tubelets: expected one of"):
        load_pretrain_config(bad)
