"""Linear (ridge) probe of frozen encoder features on labelled simulator / DROID-layout frames.

Compares the encoder of a pretraining checkpoint with the same architecture at random initialisation
(and raw pixels), predicting e.g. the end-effector position from single frames. Train/test split by
episode; the ridge strength is chosen on a validation split of the training episodes.

Example (after scripts/pretrain.py --config tiny-pretrain):
  vjepa-probe --checkpoint runs/tiny-pretrain/latest.pt --data data/sim_reach
"""
import argparse
import json

import torch
import torch.nn.functional as F

from vjepa_ac.cli import ArgumentParser, need, run_cli
from vjepa_ac.linear_probe import (
    LAYER_CHOICES,
    POOL_CHOICES,
    load_episode_frames,
    probe_encoder,
    ridge_probe,
    split_by_episode,
)
from vjepa_ac.runtime import build_encoder, load_pretrain_encoder


def pixel_features(frames, size: int = 16) -> torch.Tensor:
    x = torch.as_tensor(frames).permute(0, 3, 1, 2).float() / 255.0
    return F.interpolate(x, size=(size, size), mode="area").flatten(1)


def _main(argv: list[str]) -> int:
    p = ArgumentParser(prog="vjepa-probe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint written by scripts/pretrain.py (latest.pt, e<N>.pt)")
    p.add_argument("--key", default="target_encoder", choices=["target_encoder", "encoder"],
                   help="which encoder of the checkpoint to probe (default: target_encoder, as the official evals)")
    p.add_argument("--data", required=True, help="folder of DROID-layout episodes (e.g. from envs' collection)")
    p.add_argument("--camera", help="camera serial or role (default: each episode's first camera)")
    p.add_argument("--label", default="ee_xyz", choices=["ee_xyz", "state", "gripper"],
                   help="what to regress (default: ee_xyz, the end-effector position in metres)")
    p.add_argument("--layers", default="last", choices=[*LAYER_CHOICES, "both"],
                   help="last block output, or the concatenation of the last four (default: last)")
    p.add_argument("--pool", default="flatten", choices=[*POOL_CHOICES, "both"],
                   help="keep every patch token (flatten: a linear map can use where things are; the default) "
                        "or average them (mean)")
    p.add_argument("--frame-stride", type=int, default=1, help="use every N-th frame of each episode (default 1)")
    p.add_argument("--max-episodes", type=int, help="use at most this many episodes")
    p.add_argument("--test-fraction", type=float, default=0.25, help="fraction of episodes held out (default 0.25)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and of the random-init encoder")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: fastest for tiny encoders on a busy machine)")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (also: VJEPA_AC_DEBUG=1)")
    args = p.parse_args(argv)
    need(args.frame_stride >= 1, "--frame-stride", "an integer >= 1", args.frame_stride)
    need(args.max_episodes is None or args.max_episodes >= 2, "--max-episodes", "an integer >= 2 (train and test)",
         args.max_episodes)
    need(0 < args.test_fraction < 1, "--test-fraction", "a fraction in (0, 1)", args.test_fraction)
    need(args.threads >= 1, "--threads", "an integer >= 1", args.threads)
    torch.set_num_threads(args.threads)

    encoder, spec = load_pretrain_encoder(args.checkpoint, key=args.key)
    torch.manual_seed(args.seed + 1)
    random_encoder = build_encoder(spec).eval()
    crop_size, tubelet_size = spec["kwargs"]["img_size"], spec["kwargs"]["tubelet_size"]
    data = load_episode_frames(args.data, crop_size, args.camera, args.label, args.frame_stride,
                               args.max_episodes)
    train, test = split_by_episode(data, args.test_fraction, args.seed)
    print(f"{len(train.frames)} train frames / {len(test.frames)} test frames "
          f"({len(set(train.episode))} / {len(set(test.episode))} episodes), label {args.label}")

    layer_opts = LAYER_CHOICES if args.layers == "both" else (args.layers,)
    pool_opts = POOL_CHOICES if args.pool == "both" else (args.pool,)
    rows = []
    for name, enc in (("pretrained", encoder), ("random-init", random_encoder)):
        results = probe_encoder(enc, train, test, layer_opts, pool_opts, tubelet_size)
        for (layers, pool), r in results.items():
            rows.append({"features": name, "layers": layers, "pool": pool, **r.as_row()})
    rows.sort(key=lambda r: (r["layers"], r["pool"]))
    r = ridge_probe(pixel_features(train.frames), train.labels, pixel_features(test.frames), test.labels,
                    train_groups=train.episode)
    rows.append({"features": "pixels 16x16", "layers": "-", "pool": "-", **r.as_row()})

    unit, scale = ("cm", 100.0) if args.label == "ee_xyz" else ("", 1.0)
    print(f"\n| features | layers | pool | R² (test) | RMSE {unit} | ridge | dims |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['features']} | {row['layers']} | {row['pool']} | {row['r2']:.3f} | "
              f"{row['rmse'] * scale:.2f} | {row['ridge']:g} | {row['num_features']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "label": args.label, "rows": rows}, f, indent=2)
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":  # python -m vjepa_ac.cli.linear_probe
    raise SystemExit(main())
