"""vjepa_ac.formats: every checkpoint layout is recognised, loads strictly and computes what the saved model did."""

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from planning.cem import CEMConfig, CEMPlanner
from vjepa_ac import checkpoint, formats, hub, runtime
from vjepa_ac.formats import CheckpointFormatError, detect_format, load_ac_model, load_encoder_with_info
from vjepa_ac.models import VisionTransformer, vit_2_1, vit_ac_predictor, vit_tiny
from vjepa_ac.runtime import VJEPAWorldModel

TOL = 1e-5
ROOT = Path(__file__).resolve().parents[2]

# A tiny official-layout V-JEPA 2-AC model, written as the file of constructor kwargs --arch-config takes.
AC_ARCH = {
    "encoder": {
        "img_size": 32,
        "patch_size": 16,
        "num_frames": 2,
        "tubelet_size": 2,
        "embed_dim": 32,
        "depth": 2,
        "num_heads": 2,
        "use_rope": True,
    },
    "predictor": {
        "img_size": 32,
        "patch_size": 16,
        "num_frames": 8,
        "tubelet_size": 2,
        "predictor_embed_dim": 24,
        "depth": 2,
        "num_heads": 2,
        "action_embed_dim": 7,
    },
}


def _official(state, prefix="module.backbone."):
    return {prefix + k: v for k, v in state.items()}


def _randomized(model):
    """Perturb every tensor (LayerNorms too) so that a wrongly mapped weight changes the output."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def _max_diff(a, b):
    assert a.shape == b.shape
    return (a - b).abs().max().item()


# ---------------------------------------------------------------------------------------------------
# Hugging Face folders
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.VJEPA2Config(
        crop_size=32,
        frames_per_clip=4,
        hidden_size=48,
        num_attention_heads=3,
        num_hidden_layers=2,
        mlp_ratio=3.0,
        pred_hidden_size=24,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=2,
        pred_num_mask_tokens=3,
    )
    model = _randomized(transformers.VJEPA2Model(config))
    folder = tmp_path_factory.mktemp("hf") / "vjepa2-tiny"
    model.save_pretrained(folder)
    return model, folder


@torch.no_grad()
def test_hf_folder_matches_transformers_last_hidden_state(hf_model):
    model, folder = hf_model
    encoder, info = load_encoder_with_info(folder)
    assert info.format == "hf" and "config.json" in info.arch and not encoder.training
    for shape in [(2, 4, 3, 32, 32), (1, 6, 3, 48, 32)]:  # crop size, then another size and frame count
        video = torch.randn(shape)  # transformers takes [B, T, C, H, W]
        expected = model(pixel_values_videos=video, skip_predictor=True).last_hidden_state
        assert _max_diff(encoder(video.permute(0, 2, 1, 3, 4)), expected) <= TOL
    assert (
        _max_diff(
            checkpoint.load_encoder(folder / "model.safetensors")(video.permute(0, 2, 1, 3, 4)), expected
        )
        <= TOL
    )


@torch.no_grad()
def test_hf_predictor_matches_transformers(hf_model):
    model, folder = hf_model
    encoder, predictor, _ = formats.load_hf_vjepa2(folder)
    video = torch.randn(2, 4, 3, 32, 32)
    tokens = encoder(video.permute(0, 2, 1, 3, 4))
    context = torch.stack([torch.randperm(8)[:5] for _ in range(2)])
    target = torch.stack([torch.randperm(8)[:3] for _ in range(2)])
    out = model(pixel_values_videos=video, context_mask=[context], target_mask=[target])
    ours = predictor(
        torch.gather(tokens, 1, context[..., None].expand(-1, -1, 48)), context, target, mask_index=1
    )
    assert _max_diff(ours, out.predictor_output.last_hidden_state) <= TOL


def test_hf_classification_folder_and_bad_configs(hf_model, tmp_path):
    transformers = pytest.importorskip("transformers")
    model, _ = hf_model
    config = transformers.VJEPA2Config(**{**model.config.to_dict(), "num_labels": 3})
    classifier = transformers.VJEPA2ForVideoClassification(config).eval()
    classifier.vjepa2.load_state_dict(model.state_dict())
    classifier.save_pretrained(tmp_path / "cls")
    encoder, info = load_encoder_with_info(tmp_path / "cls")
    assert any("classifier/pooler" in note for note in info.notes)
    video = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        expected = model(pixel_values_videos=video, skip_predictor=True).last_hidden_state
        assert _max_diff(encoder(video.permute(0, 2, 1, 3, 4)), expected) <= TOL

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(CheckpointFormatError, match=r"config.json: model_type is 'vit', expected 'vjepa2'"):
        detect_format(tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "vjepa2"}))
    with pytest.raises(
        CheckpointFormatError, match=r"other: found \['config.json'\], expected weights in one of"
    ):
        formats.load_encoder(tmp_path / "other")


# ---------------------------------------------------------------------------------------------------
# Official pretraining files (V-JEPA 2 and 2.1)
# ---------------------------------------------------------------------------------------------------


@torch.no_grad()
def test_official_pretraining_checkpoint_loads_target_encoder_with_inferred_size(tmp_path):
    torch.manual_seed(0)
    online, target = (
        _randomized(vit_tiny(num_frames=64, use_rope=True)),
        _randomized(vit_tiny(num_frames=64, use_rope=True)),
    )
    path = tmp_path / "e10.pt"
    torch.save(
        {
            "encoder": _official(online.state_dict()),
            "target_encoder": _official(target.state_dict()),
            "predictor": {"module.backbone.predictor_embed.weight": torch.zeros(4, 192)},
            "opt": {"state": {}},
            "scaler": None,
            "epoch": 10,
            "loss": 0.5,
            "batch_size": 2,
            "world_size": 1,
            "lr": 1e-4,
        },
        path,
    )
    encoder, info = load_encoder_with_info(path)
    assert (info.format, info.encoder_key) == ("official", "target_encoder")
    assert info.arch.startswith("vit_tiny (inferred from shapes; 3 heads)")
    x = torch.randn(1, 3, 4, 32, 48)
    assert _max_diff(encoder(x), target(x)) == 0
    assert _max_diff(load_encoder_with_info(path, key="encoder")[0](x), online(x)) == 0
    assert _max_diff(formats.load_encoder(path, arch="vit_tiny")(x), target(x)) == 0
    with pytest.raises(
        CheckpointFormatError, match=r"arch 'vjepa2_1_vit_base_384' is a V-JEPA 2.1 model but the file"
    ):
        formats.load_encoder(path, arch="vjepa2_1_vit_base_384")
    with pytest.raises(
        CheckpointFormatError,
        match=r"e10.pt\['target_encoder'\]: does not fit VisionTransformer; .*proj.bias: checkpoint \[192\] vs model \[384\]",
    ):
        formats.load_encoder(path, arch="vit_small")  # the right family, the wrong size: strict load refuses


@torch.no_grad()
def test_official_2_1_file_loads_ema_encoder(tmp_path):
    torch.manual_seed(0)
    options = {"num_frames": 64, "img_size": 384, "img_temporal_dim_size": 1, "interpolate_rope": True}
    student = _randomized(vit_2_1("vit_tiny", **options))
    teacher = _randomized(vit_2_1("vit_small", **options))
    path = tmp_path / "distilled.pt"
    torch.save(
        {
            "ema_encoder": _official(student.state_dict()),
            "target_encoder": _official(teacher.state_dict()),
            "encoder": _official(student.state_dict()),
            "epoch": 3,
        },
        path,
    )
    encoder, info = load_encoder_with_info(path)
    assert (info.format, info.encoder_key) == ("official-2.1", "ema_encoder") and info.arch.startswith(
        "vit_tiny"
    )
    video, image = torch.randn(1, 3, 2, 32, 48), torch.randn(1, 3, 1, 32, 48)
    assert _max_diff(encoder(video), student(video)) == 0 and _max_diff(encoder(image), student(image)) == 0


def test_shape_inference_picks_the_released_variants():
    """Heads cannot be read from shapes: ViT-g / ViT-G get the released 22 / 26 heads; 2.1's ViT-G MLP is 8192."""
    for builder, name, heads in [
        (partial(hub.release_encoder, hub.RELEASES["vjepa2_vit_giant"]), "vit_giant_xformers", 22),
        (
            partial(hub.release_encoder, hub.RELEASES["vjepa2_1_vit_gigantic_384"]),
            "vit_gigantic_xformers",
            26,
        ),
        (partial(vit_2_1, "vit_large", num_frames=64, img_temporal_dim_size=1), "vit_large", 16),
    ]:
        with torch.device("meta"):
            state = builder().state_dict()
        v2_1 = "norms_block.0.weight" in state
        build, description = formats._infer_encoder(state, v2_1, "file.pt")
        assert description.startswith(f"{name} (inferred from shapes; {heads} heads)")
        with torch.device("meta"):
            assert build().state_dict().keys() == state.keys()
    with torch.device("meta"):  # the released AC file's shapes select the released AC architecture
        encoder, predictor = hub.vjepa2_ac_vit_giant()
    info = formats.CheckpointInfo("official-ac", "ac.pt", ["encoder", "predictor"], "encoder")
    build_encoder, build_predictor, description = formats._ac_builders(
        encoder.state_dict(), predictor.state_dict(), info, None, None
    )
    assert description == "preset vjepa2_ac_vit_giant (shapes of vjepa2-ac-vitg)"
    with torch.device("meta"):
        built = build_encoder()
        assert build_predictor(built).state_dict().keys() == predictor.state_dict().keys()
    with torch.device("meta"):
        odd = VisionTransformer(embed_dim=64, depth=3, num_heads=4, num_frames=2).state_dict()
    with pytest.raises(
        CheckpointFormatError, match=r"file.pt: width 64, depth 3 and MLP width 256 match no official"
    ):
        formats._infer_encoder(odd, False, "file.pt")


# ---------------------------------------------------------------------------------------------------
# Official AC files (hub layout and AC-training layout) and this project's checkpoints
# ---------------------------------------------------------------------------------------------------


def _tiny_ac():
    torch.manual_seed(0)
    encoder = _randomized(
        VisionTransformer(qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), **AC_ARCH["encoder"])
    )
    predictor = _randomized(vit_ac_predictor(embed_dim=32, **AC_ARCH["predictor"]))
    return encoder, predictor


def _plan(encoder, predictor):
    wm = VJEPAWorldModel(encoder, predictor, normalize_reps=True, img_size=32)
    rng = np.random.default_rng(0)
    context, goal = (wm.encode(rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)) for _ in range(2))
    return CEMPlanner(CEMConfig(samples=8, topk=3, iterations=2, seed=0)).plan(
        wm, context, torch.zeros(1, 7), goal
    )


@pytest.mark.parametrize("layout", ["hub", "training"])
@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_official_ac_file_loads_with_arch_config_and_plans_like_the_saved_model(tmp_path, layout, suffix):
    encoder, predictor = _tiny_ac()
    ckpt = {
        "encoder": _official(encoder.state_dict(), "module."),
        "predictor": _official(predictor.state_dict(), "module."),
    }
    if layout == "training":
        ckpt.update(
            target_encoder=ckpt["encoder"],
            opt={"state": {}, "param_groups": []},
            scaler=None,
            epoch=4,
            loss=0.1,
            batch_size=8,
            world_size=1,
            lr=4.25e-4,
        )
    path, arch = tmp_path / "ac.pt", tmp_path / f"model.{suffix}"
    torch.save(ckpt, path)
    arch.write_text(yaml.safe_dump(AC_ARCH) if suffix == "yaml" else json.dumps(AC_ARCH))

    loaded_encoder, loaded_predictor, info = load_ac_model(path, arch_config=arch)
    assert info.format == ("official-ac" if layout == "hub" else "official-ac-train")
    assert info.runtime == {"normalize_reps": True, "img_size": 32, "tubelet_size": 2, "crop_aspect": 1.0}
    x, actions, states = torch.randn(2, 3, 2, 32, 32), torch.randn(2, 3, 7), torch.randn(2, 3, 7)
    with torch.no_grad():
        assert _max_diff(loaded_encoder(x), encoder(x)) == 0
        tokens = torch.randn(2, 12, 32)
        assert _max_diff(loaded_predictor(tokens, actions, states), predictor(tokens, actions, states)) == 0
    ours, theirs = _plan(loaded_encoder, loaded_predictor), _plan(encoder, predictor)
    assert torch.equal(ours.actions, theirs.actions) and torch.isfinite(ours.energies).all()
    assert formats.load_encoder(path, arch_config=arch).state_dict().keys() == encoder.state_dict().keys()


def test_evaluate_cli_plans_with_an_official_ac_file_and_arch_config(tmp_path):
    encoder, predictor = _tiny_ac()
    path, arch = tmp_path / "ac.pt", tmp_path / "model.yaml"
    torch.save(
        {
            "encoder": _official(encoder.state_dict(), "module."),
            "predictor": _official(predictor.state_dict(), "module."),
        },
        path,
    )
    arch.write_text(yaml.safe_dump(AC_ARCH))
    from vjepa_ac.cli import evaluate as script

    out = tmp_path / "eval"
    script.main(
        [
            "--checkpoint",
            str(path),
            "--arch-config",
            str(arch),
            "--episodes",
            "1",
            "--max-steps",
            "2",
            "--samples",
            "8",
            "--topk",
            "3",
            "--iterations",
            "1",
            "--videos",
            "0",
            "--no-landscape",
            "--out",
            str(out),
        ]
    )
    report = json.loads((out / "report.json").read_text())
    assert report["episodes"] == 1 and report["steps"]["mean"] == 2
    assert (report["checkpoint"], report["arch_config"]) == (str(path), str(arch))


def test_official_ac_refusals_name_file_found_and_expected(tmp_path):
    encoder, predictor = _tiny_ac()
    path = tmp_path / "ac.pt"
    torch.save(
        {"encoder": _official(encoder.state_dict(), "module."), "predictor": predictor.state_dict()}, path
    )
    with pytest.raises(
        CheckpointFormatError,
        match=r"ac.pt: its AC predictor .* is not the released vjepa2-ac-vitg .*--arch-config",
    ):
        load_ac_model(path)
    with pytest.raises(CheckpointFormatError, match=r"arch 'vitl' is not an action-conditioned release"):
        load_ac_model(path, arch="vitl")
    with pytest.raises(
        CheckpointFormatError,
        match=r"ac.pt\['encoder'\]: does not fit VisionTransformer; .* shape mismatches",
    ):
        load_ac_model(path, arch="vjepa2-ac-vitg")  # the released ViT-g does not fit a 32-wide file
    bad_arch = tmp_path / "model.yaml"
    bad_arch.write_text(yaml.safe_dump({"encoder": AC_ARCH["encoder"], "planner": {}}))
    with pytest.raises(
        CheckpointFormatError, match=r"model.yaml: found top-level keys \['encoder', 'planner'\]"
    ):
        load_ac_model(path, arch_config=bad_arch)
    bad_arch.write_text(yaml.safe_dump({"encoder": {**AC_ARCH["encoder"], "num_head": 2}, "predictor": {}}))
    with pytest.raises(CheckpointFormatError, match=r"cannot build the model: .*num_head"):
        load_ac_model(path, arch_config=bad_arch)

    pretraining = tmp_path / "vitl-like.pt"
    torch.save({"target_encoder": encoder.state_dict()}, pretraining)
    with pytest.raises(
        CheckpointFormatError, match=r"official V-JEPA 2 pretraining checkpoint holds no action-conditioned"
    ):
        load_ac_model(pretraining)
    junk = tmp_path / "junk.pt"
    torch.save({"weights": [1, 2], "step": 3}, junk)
    with pytest.raises(
        CheckpointFormatError, match=r"junk.pt: found entries \['step', 'weights'\], expected an official"
    ):
        detect_format(junk)
    with pytest.raises(FileNotFoundError, match="no such checkpoint file or folder"):
        detect_format(tmp_path / "missing.pt")


def test_project_checkpoints_and_bare_state_dicts(tmp_path):
    from vjepa_ac import ac_train
    from vjepa_ac.config import to_dict
    from vjepa_ac.pretrain import OFFICIAL_PREFIX, build_encoder, load_pretrain_config

    torch.manual_seed(0)
    cfg = ac_train.load_ac_config("ac-smoke")
    encoder = _randomized(runtime.build_encoder(ac_train.encoder_spec(cfg)))
    predictor = _randomized(runtime.build_predictor(ac_train.predictor_spec(cfg, encoder.embed_dim)))
    config = ac_train.checkpoint_config(cfg, encoder, {}, None)
    torch.save(
        {"encoder": encoder.state_dict(), "predictor": predictor.state_dict(), "config": config},
        tmp_path / "ac.pt",
    )
    loaded_encoder, loaded_predictor, info = load_ac_model(tmp_path / "ac.pt")
    assert info.format == "vjepa-ac" and info.runtime == config
    assert all(torch.equal(v, loaded_predictor.state_dict()[k]) for k, v in predictor.state_dict().items())
    x = torch.randn(1, 3, 2, cfg.model.img_size, cfg.model.img_size)
    with torch.no_grad():
        assert _max_diff(loaded_encoder(x), encoder(x)) == 0
        assert _max_diff(formats.load_encoder(tmp_path / "ac.pt")(x), encoder(x)) == 0

        pretrain_cfg = load_pretrain_config("tiny-pretrain")  # ViT 128 wide x 4 blocks, patch 8, 64 px
        target = _randomized(build_encoder(pretrain_cfg))
        torch.save(
            {
                "target_encoder": _official(target.state_dict(), OFFICIAL_PREFIX),
                "epoch": 1,
                "config": to_dict(pretrain_cfg),
            },
            tmp_path / "latest.pt",
        )
        loaded, info = load_encoder_with_info(tmp_path / "latest.pt")
        clip = torch.randn(1, 3, 4, 64, 64)
        assert info.format == "vjepa-pretrain" and _max_diff(loaded(clip), target(clip)) == 0

        torch.save(target.state_dict(), tmp_path / "bare.pt")
        with pytest.raises(
            CheckpointFormatError, match=r"width 128, depth 4 and MLP width 512 match no official size"
        ):
            formats.load_encoder(tmp_path / "bare.pt")
        arch = tmp_path / "encoder.yaml"
        arch.write_text(
            yaml.safe_dump(
                {
                    "encoder": {
                        "embed_dim": 128,
                        "depth": 4,
                        "num_heads": 4,
                        "patch_size": 8,
                        "img_size": 64,
                        "num_frames": 4,
                        "use_rope": True,
                    }
                }
            )
        )
        loaded, info = load_encoder_with_info(tmp_path / "bare.pt", arch_config=arch)
        assert info.format == "state-dict" and _max_diff(loaded(clip), target(clip)) == 0


def test_release_table_and_2_1_builders():
    assert hub.find_release("vitg-384.pt")[0] == "vjepa2_vit_giant_384"
    assert hub.find_release("vjepa2-ac-vitg")[1].action_conditioned and hub.find_release("vit_large") is None
    assert (
        hub.CHECKPOINT_URLS["vjepa2_1_vitG_384"]
        == "https://dl.fbaipublicfiles.com/vjepa2/vjepa2_1_vitG_384.pt"
    )
    with torch.device("meta"):
        encoder = hub.vjepa2_1_vit_gigantic_384()
    state = encoder.state_dict()
    assert encoder.num_heads == 26 and encoder.img_height == 384 and encoder.interpolate_rope
    assert state["blocks.47.mlp.fc1.weight"].shape == (8192, 1664) and "norm.weight" not in state
    assert state["patch_embed_img.proj.weight"].shape == (1664, 3, 1, 16, 16) and "video_mod_embed" in state
    assert "norms_block.3.weight" in state and encoder.hierarchical_layers == [11, 23, 37, 47]
