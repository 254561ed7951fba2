"""The full-size dry run (vjepa_ac.dry_run, benchmarks/full_size_dry_run.py): the code path on a tiny
architecture, and the full-size architecture it builds by default (on the meta device: no 5 GB of weights)."""
import re

import torch
import yaml

from vjepa_ac import dry_run
from vjepa_ac.formats import build_ac_architecture

TINY = {
    "encoder": {"img_size": 64, "patch_size": 16, "num_frames": 2, "tubelet_size": 2, "embed_dim": 32, "depth": 1,
                "num_heads": 2, "use_rope": True},
    "predictor": {"img_size": 64, "patch_size": 16, "num_frames": 8, "tubelet_size": 2, "predictor_embed_dim": 32,
                  "depth": 1, "num_heads": 2, "action_embed_dim": 7, "use_extrinsics": False,
                  "is_frame_causal": True, "use_rope": True},
}


def test_a_tiny_architecture_plans_one_action_and_reports_the_table(tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    argv = ["--arch-config", str(tmp_path / "tiny.yaml"), "--samples", "6", "--topk", "3", "--iterations", "2",
            "--horizon", "2", "--threads", "1"]
    assert dry_run.main(argv) == 0
    out = capsys.readouterr().out
    table = dict(re.findall(r"^\| (.+?) \| ([^|]+?) \|$", out, flags=re.MULTILINE))
    stages = {m[0]: m[1:] for m in re.findall(r"^\| (.+?) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+ [MG]iB) \|$", out,
                                               flags=re.MULTILINE)}
    encoder, predictor, _ = build_ac_architecture(None, tmp_path / "tiny.yaml")
    assert table["encoder parameters"] == f"{sum(p.numel() for p in encoder.parameters()):,}"
    assert table["predictor parameters"] == f"{sum(p.numel() for p in predictor.parameters()):,}"
    assert table["encoder input"] == "64 px, 2-frame tubelet"
    assert table["planner"] == "CEM, 6 samples, top 3, 2 iteration(s), horizon 2"
    assert [name.split(" ")[0] for name in stages] == ["build", "encode", "encode", "CEM", "total"]
    wall = [float(v[0]) for v in stages.values()]
    assert abs(sum(wall[:-1]) - wall[-1]) <= 0.26  # the total is the sum of the stages (each rounded to 0.1)
    xyz = [float(v) for v in table["executed action (xyz, metres)"].strip("[]").split()]
    assert len(xyz) == 3 and max(abs(v) for v in xyz) <= 0.05  # within the planner's maxnorm box


def test_bf16_runs_and_bad_flags_are_one_line(tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    assert dry_run.main(["--arch-config", str(tmp_path / "tiny.yaml"), "--dtype", "bfloat16"]) == 0
    assert "| weights in memory (bfloat16) |" in capsys.readouterr().out
    for argv, code, names in ((["--topk", "9"], 2, "--topk"), (["--samples", "0"], 2, "--samples"),
                              (["--arch", "vitl"], 1, "vitl")):  # vitl.pt has no AC predictor
        assert dry_run.main(argv) == code
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and err[0].startswith("error: ") and names in err[0]


def test_the_default_is_the_released_vitg_encoder_and_ac_predictor():
    with torch.device("meta"):
        encoder, predictor, description = build_ac_architecture()
    assert description == "preset vjepa2_ac_vit_giant"
    # vit_giant_xformers: width 1408, 40 blocks, 22 heads, MLP 1408 * 48 / 11, 16 px patches, 2-frame tubelets
    assert (encoder.embed_dim, len(encoder.blocks), encoder.blocks[0].attn.num_heads) == (1408, 40, 22)
    assert encoder.blocks[0].mlp.fc1.out_features == 6144 and encoder.patch_embed.proj.kernel_size == (2, 16, 16)
    assert encoder.img_height == 256
    # the hub's AC predictor: width 1024, 24 blocks, 16 heads, 7-D actions
    assert (predictor.predictor_embed.out_features, len(predictor.predictor_blocks)) == (1024, 24)
    assert predictor.predictor_blocks[0].attn.num_heads == 16 and predictor.action_encoder.in_features == 7
    # 1.01 B + 0.31 B parameters: the released ViT-g and AC predictor (docs/checkpoints.md)
    assert sum(p.numel() for p in encoder.parameters()) == 1_012_173_952
    assert sum(p.numel() for p in predictor.parameters()) == 305_220_992
