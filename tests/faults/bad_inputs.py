"""The bad-input sweep: every command line of the project x hostile inputs, each run as a real process.

A case HOLDS when the command exits with the expected code (2: usage, 1: data), writes exactly one line to
stderr, ``error: ...``, that names the offending file or field (``names``), prints no traceback, and no planted
pickle payload ran. Anything else is LOST, with the reason.

Each case runs in a forked child of the process that imported the commands once (a fresh interpreter per case
would spend ~3 CPU-seconds importing torch): the child's stderr is a pipe, its exit code what ``sys.exit(main())``
would give, a case that does not finish within ``timeout`` is killed and lost. Used by
``tests/faults/test_bad_inputs.py`` (the quick subset) and ``benchmarks/fault_suite.py`` (all of it).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import select
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

# Command name -> "module:function" (the console scripts of pyproject.toml, plus python -m droid_data).
COMMANDS = {
    "collect": "vjepa_ac.cli.collect:main",
    "pretrain": "vjepa_ac.cli.pretrain:main",
    "probe": "vjepa_ac.cli.linear_probe:main",
    "train-ac": "vjepa_ac.cli.train_ac:main",
    "evaluate": "vjepa_ac.cli.evaluate:main",
    "demo": "vjepa_ac.cli.demo:main",
    "deploy": "vjepa_ac.cli.deploy:main",
    "franka-server": "robot.cli:main",
    "droid-data": "droid_data.__main__:main",
}
USAGE, DATA = 2, 1


@dataclass
class Case:
    command: str  # a key of COMMANDS
    what: str  # the hostile input, in words
    argv: list[str]
    code: int  # expected exit code
    names: str  # the error line must contain this (the file or the field)
    quick: bool = False  # in the fast subset run by the tests


@dataclass
class Outcome:
    case: Case
    code: int | None  # None: killed after the timeout
    stderr: str
    seconds: float
    payload_ran: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return not self.reasons


class Payload:
    """Pickles into a call that creates ``marker``: a checkpoint holding it runs code if loaded unsafely."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def make_inputs(folder: Path) -> dict[str, str]:
    """Write the hostile (and a few good) inputs into ``folder``; returns name -> path."""
    import numpy as np
    import torch
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    f = {name: str(folder / name) for name in (
        "missing.pt", "missing.yaml", "missing_dir", "missing.png", "marker", "out")}
    torch.set_num_threads(1)

    def path(name):
        f[name] = str(folder / name)
        return folder / name

    path("empty.pt").write_bytes(b"")
    path("text.pt").write_text("this is not a checkpoint\n")
    path("binary.bin").write_bytes(bytes(range(256)) * 4)
    pretrain_ckpt, ac_ckpt = _tiny_checkpoints()
    torch.save(pretrain_ckpt, path("pretrain.pt"))
    torch.save(ac_ckpt, path("ac.pt"))
    torch.save({k: ac_ckpt[k] for k in ("encoder", "predictor")}, path("official_ac.pt"))  # no config: official
    path("truncated.pt").write_bytes((folder / "ac.pt").read_bytes()[:4096])
    torch.save({"encoder": {}, "opt": Payload(Path(f["marker"])), "epoch": 1}, path("payload.pt"))
    for run in ("run_payload", "run_truncated"):  # pretraining run folders whose latest.pt is hostile
        path(run).mkdir(exist_ok=True)
    torch.save({"encoder": {}, "opt": Payload(Path(f["marker"])), "epoch": 1}, folder / "run_payload" / "latest.pt")
    (folder / "run_truncated" / "latest.pt").write_bytes((folder / "pretrain.pt").read_bytes()[:2048])
    path("empty_dir").mkdir(exist_ok=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(path("goal.png"))
    path("empty.png").write_bytes(b"")
    path("text.png").write_text("not an image\n")
    path("token").write_text("s3cret\n")
    path("empty_token").write_text("\n")
    # config files
    path("broken.yaml").write_text("optim:\n  lr: [1e-3\n")
    path("typed.yaml").write_text("optim:\n  lr: fast\n")
    path("unknown.yaml").write_text("optim:\n  lrr: 0.001\n")
    path("list.yaml").write_text("- 1\n- 2\n")
    # robot cell limits
    path("limits_fast.yaml").write_text("max_translation: 'fast'\n")
    path("limits_unknown.yaml").write_text("max_translaton: 0.02\n")
    path("limits_syntax.yaml").write_text("max_translation: [0.1\nwatchdog_ms: 300\n")
    path("limits_list.yaml").write_text("- 0.1\n")
    path("limits_inf.yaml").write_text("max_rotation: .inf\n")
    path("limits_box.yaml").write_text("workspace_low: [0.8, 0.0, 0.1]\nworkspace_high: [0.2, 0.4, 0.7]\n")
    path("limits_short.yaml").write_text("workspace_low: [0.2, 0.0]\n")
    # planning energy files (--energy)
    path("energy_kind.yaml").write_text("kind: l3\n")
    path("energy_no_head.yaml").write_text("head_weight: 3.0\nhead: missing.pt\n")
    # collect --mix files
    path("mix_broken.yaml").write_text("reach: [3\n")
    path("mix_bad.yaml").write_text("reach: -4\n")
    return f


def _tiny_checkpoints() -> tuple[dict, dict]:
    """A real pretraining checkpoint of a tiny config (untrained) and a real AC checkpoint (ac-smoke)."""
    import torch

    from vjepa_ac import ac_train, runtime
    from vjepa_ac.config import from_dict
    from vjepa_ac.pretrain import JEPATrainer, JEPATrainingConfig, build_encoder, build_predictor

    torch.manual_seed(0)
    cfg = from_dict(JEPATrainingConfig, {
        "data": {"source": "synthetic", "frames_per_clip": 4, "crop_size": 32, "batch_size": 2},
        "model": {"name": "custom", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8,
                  "predictor_embed_dim": 32, "predictor_depth": 1, "predictor_num_heads": 2},
        "optim": {"epochs": 1, "steps_per_epoch": 1, "warmup_epochs": 0}, "run": {"use_bfloat16": False}})
    encoder = build_encoder(cfg)
    pretrain = JEPATrainer(encoder, build_predictor(cfg, encoder.embed_dim), cfg, torch.device("cpu")).state(0)
    ac_cfg = ac_train.load_ac_config("ac-smoke")
    encoder = runtime.build_encoder(ac_train.encoder_spec(ac_cfg))
    predictor = runtime.build_predictor(ac_train.predictor_spec(ac_cfg, encoder.embed_dim))
    ac = {"encoder": encoder.state_dict(), "predictor": predictor.state_dict(),
          "config": ac_train.checkpoint_config(ac_cfg, encoder, {}, None)}
    return pretrain, ac


def cases(f: dict[str, str]) -> list[Case]:
    """Every command x the hostile inputs that apply to it. ``f``: the paths of ``make_inputs``."""
    out = f["out"]
    c: list[Case] = []

    def add(command, what, argv, code, names, quick=False):
        c.append(Case(command, what, [str(a) for a in argv], code, names, quick))

    # -- collect: flags and mixes (nothing is collected: every case fails before the first episode)
    task = ["--task", "reach", "--episodes", "1", "--out", f"{out}/collect"]
    add("collect", "wrong-typed flag", ["--task", "reach", "--episodes", "two", "--out", out], USAGE, "--episodes",
        quick=True)
    add("collect", "negative count", ["--task", "reach", "--episodes", "-1", "--out", out], USAGE, "--episodes")
    add("collect", "unknown task", ["--task", "fly", "--episodes", "1", "--out", out], USAGE, "fly")
    add("collect", "unknown flag", [*task, "--speed", "3"], USAGE, "--speed")
    add("collect", "negative image size", [*task, "--image-size", "-5"], USAGE, "image")
    add("collect", "inf control rate", [*task, "--control-hz", "inf"], USAGE, "control")
    add("collect", "unknown object", [*task, "--objects", "sphere"], USAGE, "sphere")
    add("collect", "unknown camera", [*task, "--cameras", "ext9"], USAGE, "ext9")
    add("collect", "negative jitter", [*task, "--camera-jitter", "-1"], USAGE, "jitter")
    add("collect", "missing mix file", ["--mix", f["missing.yaml"], "--out", out], USAGE, f["missing.yaml"])
    add("collect", "bad YAML mix", ["--mix", f["mix_broken.yaml"], "--out", out], USAGE, f["mix_broken.yaml"])
    add("collect", "negative mix count (file)", ["--mix", f["mix_bad.yaml"], "--out", out], USAGE, "reach")
    add("collect", "negative mix count", ["--mix", "reach:-1", "--out", out], USAGE, "reach")
    add("collect", "unknown mix component", ["--mix", "fly:3", "--out", out], USAGE, "fly")
    add("collect", "output is a file", ["--task", "reach", "--episodes", "1", "--out", f["text.pt"]], USAGE,
        f["text.pt"])

    # -- pretrain: configs, flags, resume and cooldown checkpoints
    run = ["--config", "tiny-synthetic", "--run.out", f"{out}/pretrain"]
    anneal = [*run, "--optim.is_anneal", "true", "--optim.anneal_ckpt"]
    add("pretrain", "missing config", ["--config", f["missing.yaml"]], USAGE, f["missing.yaml"])
    add("pretrain", "bad YAML config", ["--config", f["broken.yaml"]], USAGE, f["broken.yaml"], quick=True)
    add("pretrain", "wrong-typed field (file)", ["--config", f["typed.yaml"]], USAGE, "optim.lr")
    add("pretrain", "unknown field (file)", ["--config", f["unknown.yaml"]], USAGE, "lrr")
    add("pretrain", "not a mapping (file)", ["--config", f["list.yaml"]], USAGE, f["list.yaml"])
    add("pretrain", "wrong-typed flag", [*run, "--optim.lr", "fast"], USAGE, "optim.lr")
    add("pretrain", "inf lr", [*run, "--optim.lr", "inf"], USAGE, "optim.lr", quick=True)
    add("pretrain", "negative lr", [*run, "--optim.lr", "-1"], USAGE, "optim.lr")
    add("pretrain", "nan weight decay", [*run, "--optim.weight_decay", "nan"], USAGE, "optim.weight_decay")
    add("pretrain", "zero batch", [*run, "--data.batch_size", "0"], USAGE, "data.batch_size")
    add("pretrain", "negative epochs", [*run, "--optim.epochs", "-3"], USAGE, "optim.epochs")
    add("pretrain", "unknown flag", [*run, "--optim.lrr", "1"], USAGE, "--optim.lrr")
    add("pretrain", "missing video folder", [*run, "--data.source", "videos", "--data.path", f["missing_dir"]], DATA,
        f["missing_dir"])
    add("pretrain", "pickle payload (resume latest.pt)", ["--config", "tiny-synthetic", "--run.out",
                                                           f["run_payload"]], DATA, "latest.pt", quick=True)
    add("pretrain", "truncated latest.pt (resume)", ["--config", "tiny-synthetic", "--run.out", f["run_truncated"]],
        DATA, "latest.pt")
    for name in ("payload.pt", "missing.pt", "empty.pt", "text.pt", "truncated.pt", "ac.pt"):
        add("pretrain", f"anneal_ckpt {name}", [*anneal, f[name]], DATA, f[name])

    # -- probe: checkpoints, data, flags
    probe = ["--data", f["empty_dir"], "--checkpoint"]
    for name, quick in (("missing.pt", False), ("empty.pt", False), ("text.pt", True), ("truncated.pt", False),
                        ("payload.pt", True), ("ac.pt", False)):
        add("probe", f"checkpoint {name}", [*probe, f[name]], DATA, f[name], quick)
    add("probe", "missing data folder", ["--checkpoint", f["pretrain.pt"], "--data", f["missing_dir"]], DATA,
        f["missing_dir"])
    add("probe", "empty data folder", ["--checkpoint", f["pretrain.pt"], "--data", f["empty_dir"]], DATA,
        f["empty_dir"])
    add("probe", "zero stride", [*probe, f["pretrain.pt"], "--frame-stride", "0"], USAGE, "--frame-stride")
    add("probe", "test fraction > 1", [*probe, f["pretrain.pt"], "--test-fraction", "2"], USAGE, "--test-fraction")
    add("probe", "unknown choice", [*probe, f["pretrain.pt"], "--label", "colour"], USAGE, "--label")

    # -- train-ac: configs, flags, encoder checkpoints, data
    ac = ["--config", "ac-smoke", "--run.out", f"{out}/ac", "--data.path", f["empty_dir"]]
    add("train-ac", "missing config", ["--config", f["missing.yaml"]], USAGE, f["missing.yaml"])
    add("train-ac", "bad YAML config", ["--config", f["broken.yaml"]], USAGE, f["broken.yaml"])
    add("train-ac", "wrong-typed field (file)", ["--config", f["typed.yaml"]], USAGE, "optim.lr")
    add("train-ac", "unknown field (file)", ["--config", f["unknown.yaml"]], USAGE, "lrr")
    add("train-ac", "wrong-typed flag", [*ac, "--optim.lr", "fast"], USAGE, "optim.lr", quick=True)
    add("train-ac", "inf lr", [*ac, "--optim.lr", "inf"], USAGE, "optim.lr")
    add("train-ac", "negative lr", [*ac, "--optim.lr", "-1"], USAGE, "optim.lr")
    add("train-ac", "nan start lr", [*ac, "--optim.start_lr", "nan"], USAGE, "optim.start_lr")
    add("train-ac", "one-frame clips", [*ac, "--data.frames_per_clip", "1"], USAGE, "data.frames_per_clip")
    add("train-ac", "zero checkpoint interval", [*ac, "--run.checkpoint_every", "0"], USAGE, "run.checkpoint_every")
    add("train-ac", "unknown flag", [*ac, "--no_such_field", "1"], USAGE, "--no_such_field")
    for name, quick in (("payload.pt", True), ("missing.pt", False), ("empty.pt", False), ("text.pt", False),
                        ("truncated.pt", True), ("ac.pt", False)):
        add("train-ac", f"encoder checkpoint {name}", [*ac, "--model.encoder_checkpoint", f[name]], DATA, f[name],
            quick)
    add("train-ac", "missing data folder", ["--config", "ac-smoke", "--run.out", f"{out}/ac2", "--data.path",
                                            f["missing_dir"]], DATA, f["missing_dir"])
    add("train-ac", "data path is a text file", ["--config", "ac-smoke", "--run.out", f"{out}/ac3", "--data.path",
                                                 f["text.pt"]], DATA, f["text.pt"])

    # -- evaluate: checkpoints, env options, planner flags
    ev = ["--out", f"{out}/eval", "--episodes", "1", "--no-landscape", "--videos", "0"]
    for name, quick in (("missing.pt", False), ("empty.pt", True), ("text.pt", True), ("truncated.pt", True),
                        ("payload.pt", True), ("pretrain.pt", True)):
        add("evaluate", f"checkpoint {name}", [*ev, "--checkpoint", f[name]], DATA, f[name], quick)
    for name in ("broken.yaml", "missing.yaml", "list.yaml"):
        add("evaluate", f"arch-config {name}", [*ev, "--checkpoint", f["official_ac.pt"], "--arch-config", f[name]],
            USAGE, f[name])
    for options, quick in (("{bogus: 1}", True), ("{image_size: -1}", False), ("{image_size: big}", False),
                           ("[1, 2]", False), ("{a: [1", False)):
        add("evaluate", f"env options {options}", [*ev, "--world-model", "oracle", "--env-options", options], USAGE,
            "--env-options", quick)
    add("evaluate", "unknown task", [*ev, "--world-model", "oracle", "--task", "FrankaFly-v0"], USAGE, "FrankaFly")
    for flag, value in (("--episodes", "-1"), ("--horizon", "0"), ("--samples", "-3"), ("--maxnorm", "inf"),
                        ("--topk", "1"), ("--device", "gpu"), ("--max-steps", "0")):
        add("evaluate", f"{flag} {value}", [*ev, "--world-model", "oracle", flag, value], USAGE,
            flag if flag != "--topk" else "topk")
    add("evaluate", "unknown flag", [*ev, "--speed", "3"], USAGE, "--speed")
    for name, code, names, quick in (("energy_kind.yaml", USAGE, "kind", True), ("broken.yaml", USAGE, "broken.yaml",
                                     False), ("missing.yaml", USAGE, "missing.yaml", False),
                                     ("energy_no_head.yaml", DATA, "missing.pt", False)):
        add("evaluate", f"energy {name}", [*ev, "--checkpoint", f["ac.pt"], "--energy", f[name]], code, names, quick)
    add("evaluate", "head without an energy file", [*ev, "--checkpoint", f["ac.pt"], "--head", f["ac.pt"]], USAGE,
        "--head")

    # -- demo: configs and fields (every case fails before the first stage)
    demo = ["--config", "demo-toy", "--out", f"{out}/demo"]
    add("demo", "missing config", ["--config", f["missing.yaml"], "--out", f"{out}/demo"], USAGE, f["missing.yaml"])
    add("demo", "bad YAML config", ["--config", f["broken.yaml"], "--out", f"{out}/demo"], USAGE, f["broken.yaml"])
    add("demo", "wrong-typed flag", [*demo, "--eval_episodes", "many"], USAGE, "eval_episodes", quick=True)
    add("demo", "negative episodes", [*demo, "--eval_episodes", "-1"], USAGE, "eval_episodes")
    add("demo", "inf energy weight", [*demo, "--head_weight", "inf"], USAGE, "head_weight", quick=True)
    add("demo", "more elites than samples", [*demo, "--topk", "17"], USAGE, "topk")
    add("demo", "unknown energy steps", [*demo, "--energy_steps", "first"], USAGE, "energy_steps")
    add("demo", "tiny images", [*demo, "--image_size", "8"], USAGE, "image_size")
    add("demo", "unknown extra task", [*demo, "--extra_tasks", "[fly]"], USAGE, "extra_tasks")
    add("demo", "unknown flag", [*demo, "--speed", "3"], USAGE, "--speed")

    # -- the robot server (sim backend): limits files, flags, token (every case fails before it serves)
    srv = ["--backend", "sim", "--port", "0", "--image-size", "32", "--log-level", "WARNING"]
    add("franka-server", "missing limits file", [*srv, "--limits", f["missing.yaml"]], USAGE, f["missing.yaml"])
    for name, names, quick in (("limits_fast.yaml", "max_translation", True),
                               ("limits_unknown.yaml", "max_translaton", False),
                               ("limits_syntax.yaml", "limits_syntax.yaml", True),
                               ("limits_list.yaml", "limits_list.yaml", False),
                               ("limits_inf.yaml", "max_rotation", False),
                               ("limits_box.yaml", "workspace", False),
                               ("limits_short.yaml", "workspace_low", False),
                               ("binary.bin", "binary.bin", False)):
        add("franka-server", f"limits {name}", [*srv, "--limits", f[name]], USAGE, names, quick)
    for flag, values, names in (("--max-translation", ["fast"], "--max-translation"),
                                ("--max-rotation", ["inf"], "max_rotation"), ("--watchdog-ms", ["-1"], "watchdog_ms"),
                                ("--max-rate-hz", ["0"], "max_rate_hz"), ("--home-speed-factor", ["2"], "home_speed"),
                                ("--port", ["70000"], "--port"), ("--image-size", ["0"], "--image-size"),
                                ("--gripper-range", ["0.9", "0.1"], "gripper"), ("--control-hz", ["nan"], "--control-hz"),
                                ("--workspace-low", ["1", "1", "1"], "workspace")):
        add("franka-server", f"{flag} {' '.join(values)}", [*srv, flag, *values], USAGE, names)
    add("franka-server", "missing token file", [*srv, "--token-file", f["missing.pt"]], USAGE, f["missing.pt"])
    add("franka-server", "empty token file", [*srv, "--token-file", f["empty_token"]], USAGE, f["empty_token"])
    add("franka-server", "franky without robot ip", ["--backend", "franky"], USAGE, "--robot-ip")
    add("franka-server", "unknown backend", ["--backend", "ros"], USAGE, "--backend")
    add("franka-server", "unknown task", [*srv, "--task", "FrankaFly-v0"], USAGE, "FrankaFly")

    # -- deploy: goal image, checkpoint, flags, token (every case fails before it contacts a robot)
    dep = ["--controller", "tcp://127.0.0.1:9", "--out", f"{out}/deploy", "--device", "cpu"]
    good = [*dep, "--goal-image", f["goal.png"]]
    for name in ("missing.png", "empty.png", "text.png"):
        add("deploy", f"goal image {name}", [*dep, "--goal-image", f[name], "--checkpoint", f["ac.pt"]], DATA, f[name],
            quick=name == "text.png")
    for name, quick in (("missing.pt", False), ("empty.pt", False), ("text.pt", False), ("truncated.pt", False),
                        ("payload.pt", True), ("pretrain.pt", False)):
        add("deploy", f"checkpoint {name}", [*good, "--checkpoint", f[name]], DATA, f[name], quick)
    add("deploy", "energy kind", [*good, "--checkpoint", f["ac.pt"], "--energy", f["energy_kind.yaml"]], USAGE, "kind")
    for flag, value in (("--controller", "http://robot:5555"), ("--max-steps", "-1"), ("--fps", "0"),
                        ("--timeout", "inf"), ("--horizon", "0"), ("--device", "gpu"), ("--max-steps", "x")):
        argv = [*good, "--checkpoint", f["ac.pt"]]
        if flag == "--controller":
            argv[argv.index("--controller") + 1] = value
        else:
            argv += [flag, value]
        add("deploy", f"{flag} {value}", argv, USAGE, flag)
    add("deploy", "missing token file", [*good, "--checkpoint", f["ac.pt"], "--token-file", f["missing.pt"]], USAGE,
        f["missing.pt"])

    # -- python -m droid_data
    add("droid-data", "missing folder", ["validate", f["missing_dir"], "--quiet"], USAGE, f["missing_dir"], quick=True)
    add("droid-data", "binary file as root", ["validate", f["binary.bin"], "--quiet"], USAGE, f["binary.bin"])
    add("droid-data", "text file as root (an index of no folder)", ["validate", f["text.pt"], "--quiet"], USAGE,
        f["text.pt"])
    add("droid-data", "no episodes", ["validate", f["empty_dir"], "--quiet"], USAGE, f["empty_dir"])
    add("droid-data", "convert: missing folder", ["convert", f["missing_dir"], f"{out}/cache", "--quiet"], USAGE,
        f["missing_dir"])
    add("droid-data", "convert: zero size", ["convert", f["empty_dir"], f"{out}/cache", "--size", "0"], USAGE,
        "--size")
    add("droid-data", "convert: nan crop", ["convert", f["empty_dir"], f"{out}/cache", "--crop-aspect", "nan"], USAGE,
        "--crop-aspect")
    add("droid-data", "unknown flag", ["validate", f["empty_dir"], "--speed", "3"], USAGE, "--speed")
    return c


def load_command(name: str):
    module, _, function = COMMANDS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def preload() -> None:
    """Import every command once, so each forked case starts warm."""
    for name in COMMANDS:
        load_command(name)
    import envs  # noqa: F401  (the simulator: evaluate and the server build environments)


def _exit_code(main, argv: list[str]) -> int:
    """What ``sys.exit(main(argv))`` would exit with, the way the interpreter reports an uncaught error."""
    try:
        result = main(argv)
        return 0 if result is None else int(result)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001  exactly what an uncaught exception does to a real process
        traceback.print_exc()
        return 1


def run_case(case: Case, marker: Path, cwd: Path, timeout: float = 120.0) -> Outcome:
    """Run ``case`` in a forked child; judge it."""
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    main = load_command(case.command)
    read_end, write_end = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller
        code = 1
        try:
            os.close(read_end)
            os.dup2(write_end, 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            # New stream objects on fds 1 and 2: the caller's may be a test runner's capture objects.
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
            os.chdir(cwd)
            os.environ.pop("VJEPA_AC_DEBUG", None)
            import torch

            torch.set_num_threads(1)  # as DataLoader workers do: the parent's thread pool is not the child's
            code = _exit_code(main, case.argv)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(write_end)
    chunks, deadline, killed = [], start + timeout, False
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            os.kill(pid, signal.SIGKILL)
            killed = True
            break
        if select.select([read_end], [], [], min(remaining, 1.0))[0]:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    code = None if killed else os.waitstatus_to_exitcode(status)
    outcome = Outcome(case, code, b"".join(chunks).decode(errors="replace"), time.perf_counter() - start,
                      marker.exists())
    outcome.reasons = judge(outcome)
    return outcome


def judge(o: Outcome) -> list[str]:
    """Why the case is lost (empty: it held)."""
    lines = [line for line in o.stderr.splitlines() if line.strip()]
    reasons = []
    if o.payload_ran:
        reasons.append("the pickle payload RAN")
    if o.code is None:
        return [*reasons, f"still running after {o.seconds:.0f} s (killed)"]
    if o.code != o.case.code:
        reasons.append(f"exit code {o.code}, expected {o.case.code}")
    if any("Traceback" in line for line in lines):
        reasons.append(f"a traceback ({len(lines)} lines)")
    elif len(lines) != 1:
        reasons.append(f"{len(lines)} stderr lines")
    elif not lines[0].startswith("error: "):
        reasons.append("the line does not start with 'error: '")
    if lines and o.case.names not in " ".join(lines):
        reasons.append(f"does not name {o.case.names!r}")
    return reasons


def sweep(folder: Path, quick: bool = False, timeout: float = 120.0, on_outcome=None) -> list[Outcome]:
    """Make the inputs in ``folder``, run every case (``quick``: the fast subset); returns the outcomes."""
    files = make_inputs(folder)
    preload()
    outcomes = []
    for case in cases(files):
        if quick and not case.quick:
            continue
        outcome = run_case(case, Path(files["marker"]), folder, timeout)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes
