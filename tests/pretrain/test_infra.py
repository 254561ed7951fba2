"""Shared training infrastructure: optimizer groups, config loading, metrics logging, feature stats."""
import dataclasses
import warnings

import pytest
import torch
from torch import nn

from vjepa_ac.config import ConfigError, from_dict, load_config, parse_cli, save_yaml, to_dict
from vjepa_ac.distributed import get_rank, get_world_size, init_distributed
from vjepa_ac.feature_stats import (
    CollapseWarning,
    effective_rank,
    feature_stats,
    per_dim_std,
    warn_if_collapsed,
)
from vjepa_ac.metrics_log import MetricsLogger, read_metrics
from vjepa_ac.optim import build_adamw


class _Pred(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.mask_tokens = nn.ParameterList([nn.Parameter(torch.zeros(1, 1, 4))])


def test_adamw_has_four_groups_in_official_order_with_lr_scale():
    enc, pred = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4)), _Pred()
    opt = build_adamw({"encoder": enc, "predictor": pred}, lr=1e-3, weight_decay=0.04,
                      lr_scales={"encoder": 0.1})
    names = [g["name"] for g in opt.param_groups]
    assert names == ["encoder.decay", "predictor.decay", "encoder.no_decay", "predictor.no_decay"]
    ids = lambda g: {id(p) for p in g["params"]}
    assert ids(opt.param_groups[0]) == {id(enc[0].weight)}
    assert ids(opt.param_groups[1]) == {id(pred.lin.weight), id(pred.mask_tokens[0])}  # official: 3-D is decayed
    assert ids(opt.param_groups[2]) == {id(enc[0].bias), id(enc[1].weight), id(enc[1].bias)}
    assert ids(opt.param_groups[3]) == {id(pred.lin.bias), id(pred.norm.weight), id(pred.norm.bias)}
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4) and opt.param_groups[1]["lr"] == pytest.approx(1e-3)
    assert opt.param_groups[2]["weight_decay"] == 0.0 and opt.param_groups[2]["WD_exclude"]
    n_total = sum(p.numel() for m in (enc, pred) for p in m.parameters())
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == n_total


def test_frozen_module_contributes_no_groups():
    enc, pred = nn.Linear(3, 4), _Pred()
    enc.requires_grad_(False)
    opt = build_adamw({"encoder": enc, "predictor": pred}, lr=1e-3, weight_decay=0.04)
    assert [g["name"] for g in opt.param_groups] == ["predictor.decay", "predictor.no_decay"]
    with pytest.raises(ValueError, match="lr_scales"):
        build_adamw({"predictor": pred}, 1e-3, 0.0, lr_scales={"encodr": 0.1})


@dataclasses.dataclass
class _Inner:
    num_blocks: int = 8
    scale: tuple[float, float] = (0.15, 0.15)


@dataclasses.dataclass
class _Cfg:
    lr: float = 1e-3
    name: str = "x"
    use_bf16: bool = True
    ckpt: str | None = None
    masks: list[_Inner] = dataclasses.field(default_factory=lambda: [_Inner()])

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")


def test_config_roundtrip_presets_base_and_overrides(tmp_path):
    (tmp_path / "a.yaml").write_text("lr: 1e-3\nname: a\nmasks:\n  - {num_blocks: 8, scale: [0.1, 0.2]}\n")
    (tmp_path / "b.yaml").write_text("base: a\nname: b\n")
    cfg = load_config(_Cfg, "b", tmp_path, overrides={"lr": 3e-4, "use_bf16": False})
    assert cfg.name == "b" and cfg.lr == pytest.approx(3e-4) and cfg.use_bf16 is False
    assert cfg.masks == [_Inner(8, (0.1, 0.2))]
    save_yaml(cfg, tmp_path / "out.yaml")
    assert load_config(_Cfg, tmp_path / "out.yaml", tmp_path) == cfg
    assert from_dict(_Cfg, to_dict(cfg)) == cfg
    # The same from the command line: --config picks the preset, dotted flags override (values parsed as YAML).
    cli = parse_cli(_Cfg, ["--config", "b", "--lr", "3e-4", "--use_bf16=false", "--masks", "[{num_blocks: 2}]"],
                    tmp_path, default=None)
    assert cli.name == "b" and cli.lr == pytest.approx(3e-4) and cli.use_bf16 is False
    assert cli.masks == [_Inner(2, (0.15, 0.15))]


def test_config_errors_name_file_field_expected_and_actual(tmp_path):
    (tmp_path / "bad.yaml").write_text("masks:\n  - {num_blocks: eight}\n")
    with pytest.raises(ConfigError) as e:
        load_config(_Cfg, tmp_path / "bad.yaml", tmp_path)
    msg = str(e.value)
    assert "bad.yaml" in msg and "masks.0.num_blocks" in msg and "int" in msg and "'eight'" in msg
    with pytest.raises(ConfigError, match=r"fields `lrr` are not valid for _Cfg"):
        from_dict(_Cfg, {"lrr": 1.0})
    with pytest.raises(ConfigError, match="lr: expected > 0"):
        from_dict(_Cfg, {"lr": -1.0})
    with pytest.raises(ConfigError, match="use_bf16: Couldn't parse 'yes please' into a bool"):
        from_dict(_Cfg, {"use_bf16": "yes please"})
    with pytest.raises(ConfigError, match="presets: \\['bad'\\]"):
        load_config(_Cfg, "nope", tmp_path)
    (tmp_path / "broken.yaml").write_text("lr: [1, 2\nname: x\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+, column \d+: YAML syntax error"):
        load_config(_Cfg, tmp_path / "broken.yaml", tmp_path)
    with pytest.raises(ConfigError, match=r"defaults: .*lr.*'fast'.*float"):
        parse_cli(_Cfg, ["--lr", "fast"], tmp_path, default=None)


def test_metrics_logger_writes_csv_and_widens_columns(tmp_path):
    with MetricsLogger(tmp_path, enabled=True) as log:
        log.log(1, {"loss": 1.0})
        log.log(2, {"loss": 0.5, "lr": 1e-3})
    with MetricsLogger(tmp_path, enabled=True, tensorboard=False) as log:  # resume appends
        log.log(3, {"loss": 0.25, "lr": 2e-3})
    cols = read_metrics(tmp_path / "metrics.csv")
    assert cols["step"] == [1, 2, 3] and cols["loss"] == [1.0, 0.5, 0.25]
    assert cols["lr"][1:] == [1e-3, 2e-3] and cols["lr"][0] != cols["lr"][0]  # NaN for the missing value
    assert any((tmp_path / "tb").iterdir())
    MetricsLogger(tmp_path / "off", enabled=False).log(1, {"loss": 1.0})
    assert not (tmp_path / "off").exists()


def test_feature_stats_detect_collapse():
    healthy = torch.randn(512, 32)
    assert per_dim_std(healthy) == pytest.approx(1.0, abs=0.1)
    assert effective_rank(healthy) > 25
    collapsed = torch.randn(512, 1) @ torch.randn(1, 32) * 1e-4 + 1.0
    st = feature_stats(collapsed)
    assert st.rank < 1.5 and st.std < 1e-3
    with pytest.warns(CollapseWarning, match="collapse"):
        assert warn_if_collapsed(st, "target", std_threshold=0.01, rank_threshold=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_collapsed(feature_stats(healthy), "target", 0.01, 0.1)


def test_distributed_single_process_defaults(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    info = init_distributed(device="cpu")
    assert (info.rank, info.world_size, info.is_main) == (0, 1, True)
    assert get_rank() == 0 and get_world_size() == 1
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE.*'two'"):
        init_distributed(device="cpu")
