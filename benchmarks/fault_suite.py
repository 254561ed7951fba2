"""Fault suite: reruns the red-team sweeps and prints one table (case, tried, held, lost).

    python benchmarks/fault_suite.py            # everything: a few minutes on 2 CPU cores
    python benchmarks/fault_suite.py --quick    # a subset, about a minute
    python benchmarks/fault_suite.py --only kill,input --seed 3

Sections (every check can fail; a lost case is listed with its reason under the table):
- kill:    SIGKILL both trainers at random moments and inside ``atomic_save`` (half-written temp file, after its
           fsync, right after the rename); after each kill ``latest.pt`` must load (safely, all tensors finite,
           the step expected for the kill point) and the restart must remove the crashed writer's temp file.
- resume:  every interrupted run is carried to the end and compared with an uninterrupted run: all tensors
           bit-identical (after the kills, and after clean stops at several steps with ``run.max_steps``).
- diverge: ``lr = inf`` and ``lr = 1e9`` on a checkpoint step: the run stops, ``latest.pt`` stays the last good
           one, and resuming from it without the fault ends bit-identical to the uninterrupted run.
- temps:   temp files planted in a run folder: a crashed writer's (removed at restart), a live writer's and
           another machine's (kept), an old one without a writer (removed).
- input:   every command line x hostile inputs (tests/faults/bad_inputs.py): exit code 2/1, one stderr line
           naming the file or field, no traceback, no planted pickle payload run.
- fuzz:    fuzzed messages (tests/robot/robot_fakes.py) to the robot server on the MuJoCo arm, in process and
           over loopback to a real server process: every motion the arm makes stays inside the limits.

Trainers and commands run in forked children of this process (imports paid once); tiny models, CPU only.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "faults"), str(ROOT / "tests" / "robot")]
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

DIVERGED_EXIT = 3  # a child whose training raised TrainingDiverged


@dataclass
class Row:
    case: str
    tried: int = 0
    held: int = 0
    lost: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # printed under the table

    def record(self, ok: bool, why: str = "") -> None:
        self.tried += 1
        if ok:
            self.held += 1
        else:
            self.lost.append(why)


def row_of(rows: dict[str, Row], case: str) -> Row:
    return rows.setdefault(case, Row(case))


# ---------------------------------------------------------------------------------------------------------------
# trainers in forked children


class Clips(torch.utils.data.Dataset):
    """Synthetic AC clips (latents, states, actions), the same for every process."""

    def __init__(self, n: int = 16, frames: int = 4):
        g = torch.Generator().manual_seed(0)
        self.items = [{"latents": torch.randn(frames, 4, 16, generator=g),
                       "states": torch.rand(frames, 7, generator=g) * 0.1,
                       "actions": torch.rand(frames - 1, 7, generator=g) * 0.01} for _ in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@dataclass
class Trainer:
    """One trainer's tiny run: ``total`` optimiser steps, ``latest.pt`` every ``every`` steps."""

    name: str
    total: int
    every: int

    def run(self, out: Path, max_steps: int | None = None) -> None:
        """Train in ``out`` (resuming from its latest.pt); in the calling (child) process."""
        torch.set_num_threads(1)
        if self.name == "ac":
            from vjepa_ac.ac_train import ACTrainingConfig, encoder_spec, train
            from vjepa_ac.config import from_dict
            from vjepa_ac.runtime import build_encoder

            cfg = from_dict(ACTrainingConfig, {
                "data": {"frames_per_clip": 4, "batch_size": 4},
                "model": {"encoder_name": "VisionTransformer", "encoder_checkpoint_key": "encoder",
                          "encoder_kwargs": {"embed_dim": 16, "depth": 1, "num_heads": 2}, "img_size": 32,
                          "patch_size": 16, "predictor_embed_dim": 32, "predictor_depth": 1,
                          "predictor_num_heads": 2, "predictor_num_frames": 16},
                "optim": {"lr": 1e-3, "start_lr": 1e-4, "warmup_steps": 4, "total_steps": self.total},
                "run": {"out": str(out), "max_steps": max_steps, "log_every": 5, "eval_every": 10_000,
                        "checkpoint_every": self.every, "use_bfloat16": False, "seed": 5}}, source="fault_suite")
            torch.manual_seed(cfg.run.seed)
            train(cfg, Clips(), None, encoder=build_encoder(encoder_spec(cfg)), progress=False)
        else:
            from vjepa_ac.config import from_dict
            from vjepa_ac.pretrain import JEPATrainingConfig, train

            assert max_steps is None, "pretraining stops at epoch ends only"
            train(from_dict(JEPATrainingConfig, {
                "data": {"source": "synthetic", "frames_per_clip": 4, "crop_size": 32, "synthetic_size": 16,
                         "random_resized_crop": [1.0, 1.0], "aspect_ratio": [1.0, 1.0], "batch_size": 4},
                "model": {"name": "custom", "embed_dim": 48, "depth": 2, "num_heads": 2, "patch_size": 8,
                          "predictor_embed_dim": 32, "predictor_depth": 1, "predictor_num_heads": 2,
                          "num_mask_tokens": 4},
                "optim": {"lr": 1e-3, "start_lr": 1e-3, "final_lr": 1e-4, "warmup_epochs": 0,
                          "epochs": self.total // self.every, "steps_per_epoch": self.every, "ema_start": 0.99,
                          "ema_end": 0.999},
                "loss": {"normalize_reps": True},
                "run": {"out": str(out), "use_bfloat16": False, "log_every": 2, "stats_every": 2,
                        "save_every_epochs": 10_000, "threads": 1}}, source="fault_suite"))


def fork(target, log: Path) -> int:
    """Run ``target()`` in a forked child (stdout/stderr to ``log``); returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        from vjepa_ac.optim import TrainingDiverged

        try:
            target()
            code = 0
        except TrainingDiverged as e:
            print(f"diverged: {e}", file=sys.stderr)
            code = DIVERGED_EXIT
        except BaseException:  # noqa: BLE001  reported in the log, as a crashed process would
            import traceback

            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def wait(pid: int, timeout: float = 600.0) -> int | None:
    """The child's exit code; None if it was killed by a signal. Kills it after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def kill_inside_save(phase: str, nth: int) -> None:
    """In this (child) process: SIGKILL inside the ``nth`` atomic_save of latest.pt, at ``phase``:
    'write' (half the bytes in the temp file), 'fsync' (temp file complete, not renamed) or 'replace'
    (renamed, directory not yet synced)."""
    calls = {"write": 0, "fsync": 0, "replace": 0}

    def due(kind: str) -> bool:
        calls[kind] += 1
        return phase == kind and calls[kind] == nth

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def fd_path(fd: int) -> str:
        with contextlib.suppress(OSError):
            return os.readlink(f"/proc/self/fd/{fd}")
        return ""

    real_save, real_fsync, real_replace = torch.save, os.fsync, os.replace

    def save(obj, f, *args, **kwargs):
        if hasattr(f, "fileno") and ".latest.pt." in fd_path(f.fileno()) and due("write"):
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            f.flush()
            die()
        return real_save(obj, f, *args, **kwargs)

    def fsync(fd):
        real_fsync(fd)
        if ".latest.pt." in fd_path(fd) and due("fsync"):
            die()

    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if str(dst).endswith("latest.pt") and due("replace"):
            die()

    torch.save, os.fsync, os.replace = save, fsync, replace


def blow_up_lr(at_step: int, lr: float) -> None:
    """In this (child) process: the LR scheduler sets ``lr`` at ``at_step`` (both trainers use it)."""
    import pytest

    from tests.conftest import set_lr_at

    set_lr_at(pytest.MonkeyPatch(), at_step, lr)


# ---------------------------------------------------------------------------------------------------------------
# checks


def read_latest(folder: Path) -> dict | None:
    from vjepa_ac.checkpoint import load_checkpoint

    path = folder / "latest.pt"
    return load_checkpoint(path, required=("encoder", "predictor", "opt", "step")) if path.exists() else None


def tensors(obj, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of a nested checkpoint, by path."""
    if torch.is_tensor(obj):
        return {prefix: obj}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    out = {}
    for key, value in items:
        out.update(tensors(value, f"{prefix}/{key}"))
    return out


def check_loadable(folder: Path, expected_step: int | None = None) -> str:
    """'' if latest.pt is absent or loads with finite tensors (and the expected step); else why not."""
    try:
        state = read_latest(folder)
    except Exception as e:  # noqa: BLE001  a corrupt latest.pt is exactly what is being measured
        return f"latest.pt does not load: {e}"
    if state is None:
        return "" if expected_step in (None, 0) else f"no latest.pt, expected step {expected_step}"
    bad = [k for k, v in tensors(state).items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        return f"latest.pt holds {len(bad)} non-finite tensors (e.g. {bad[0]})"
    if expected_step is not None and int(state["step"]) != expected_step:
        return f"latest.pt is at step {state['step']}, expected {expected_step}"
    return ""


def compare(folder: Path, reference: dict) -> str:
    """'' if folder/latest.pt equals ``reference`` tensor for tensor (bit-identical); else the difference."""
    state = read_latest(folder)
    if state is None:
        return "no latest.pt"
    ours, theirs = tensors(state), tensors(reference)
    if ours.keys() != theirs.keys():
        return f"different entries: {sorted(set(ours) ^ set(theirs))[:3]}"
    differ = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    return f"{len(differ)} of {len(ours)} tensors differ (e.g. {differ[0]})" if differ else ""


def temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


# ---------------------------------------------------------------------------------------------------------------
# sections


def make_reference(trainer: Trainer, work: Path) -> float:
    """Warm this process up with one run, then the uninterrupted run every other is compared with (in a child,
    as they are); returns its duration in seconds."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        trainer.run(work / f"{trainer.name}_warmup")  # in this process: the children start warm (kernels, caches)
    start = time.monotonic()
    log = work / f"{trainer.name}.log"
    if wait(fork(lambda: trainer.run(work / f"{trainer.name}_reference"), log)) != 0:
        raise RuntimeError(f"the uninterrupted {trainer.name} run failed; see {log}")
    return time.monotonic() - start


def section_kill_and_resume(trainer: Trainer, work: Path, duration: float, rng: random.Random, random_kills: int,
                            quick: bool, rows: dict[str, Row]) -> None:
    kill = row_of(rows, f"kill -9 at random moments ({trainer.name})")
    in_save = row_of(rows, f"kill -9 inside atomic_save ({trainer.name})")
    cleaned = row_of(rows, "stale temp of a killed save removed at restart")
    resume = row_of(rows, f"resume bit-identical to an uninterrupted run ({trainer.name})")
    log = work / f"{trainer.name}.log"
    reference = read_latest(work / f"{trainer.name}_reference")

    def finish_and_compare(folder: Path) -> None:
        code = wait(fork(lambda: trainer.run(folder), log))
        why = f"the resumed run exited with {code}" if code != 0 else compare(folder, reference)
        resume.record(not why, f"{folder.name}: {why}")

    # Random moments: one chain of kills and restarts per folder, carried to the end and compared.
    chain, kills, chains = None, 0, 0
    while kills < random_kills:
        if chain is None:
            chains += 1
            chain = work / f"{trainer.name}_chain{chains}"
        pid = fork(lambda folder=chain: trainer.run(folder), log)
        time.sleep(rng.uniform(0.05, duration))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        code = wait(pid)
        if code == 0:  # finished before the kill: compare and start a new chain
            why = compare(chain, reference)
            resume.record(not why, f"{chain.name}: {why}")
            chain = None
            continue
        kills += 1
        why = f"the run failed (exit code {code}) instead of training" if code is not None else check_loadable(chain)
        kill.record(not why, f"{chain.name} kill {kills}: {why}")
        if not why:
            state = read_latest(chain)
            kill.notes.append(f"{0 if state is None else int(state['step'])}{'+tmp' if temps(chain) else ''}")
    if chain is not None:
        finish_and_compare(chain)

    # Inside atomic_save, at each phase: latest.pt must be the previous checkpoint (or the new one after the
    # rename), and the crashed writer's temp file must be gone after the restart.
    saves = trainer.total // trainer.every
    phases = ["write", "fsync", "replace"] * (1 if quick else 2)
    for i, phase in enumerate(phases):
        folder = work / f"{trainer.name}_save_{phase}_{i}"
        nth = rng.randint(2, saves - 1)

        def run_and_die(folder=folder, phase=phase, nth=nth):
            kill_inside_save(phase, nth)
            trainer.run(folder)

        code = wait(fork(run_and_die, log))
        expected = (nth - (phase != "replace")) * trainer.every
        left = temps(folder)
        why = "the run was not killed" if code is not None else check_loadable(folder, expected)
        if not why and phase != "replace" and not left:
            why = "no temp file left: the kill did not land inside the save"
        in_save.record(not why, f"{folder.name} (save {nth}): {why}")
        finish_and_compare(folder)
        if phase != "replace":
            stale = [p.name for p in left if p.exists()]
            cleaned.record(not stale, f"{folder.name}: {stale} still there after the restart")


def section_clean_stops(trainer: Trainer, work: Path, cuts: list[int], rows: dict[str, Row]) -> None:
    """AC: stop with run.max_steps at ``cuts`` (then resume to the end); compare with the reference."""
    row = row_of(rows, f"resume bit-identical to an uninterrupted run ({trainer.name})")
    log = work / f"{trainer.name}.log"
    reference = read_latest(work / f"{trainer.name}_reference")
    for cut in cuts:
        folder = work / f"{trainer.name}_stop{cut}"
        first = wait(fork(lambda folder=folder, cut=cut: trainer.run(folder, max_steps=cut), log))
        second = wait(fork(lambda folder=folder: trainer.run(folder), log))
        why = f"exit codes {first}, {second}" if (first, second) != (0, 0) else compare(folder, reference)
        row.record(not why, f"stopped at step {cut}: {why}")


def section_divergence(trainer: Trainer, work: Path, rows: dict[str, Row]) -> None:
    row = row_of(rows, f"divergence on a checkpoint step ({trainer.name})")
    log = work / f"{trainer.name}.log"
    reference = read_latest(work / f"{trainer.name}_reference")
    for lr in (float("inf"), 1e9):
        folder = work / f"{trainer.name}_diverge_{lr:g}"
        at = 2 * trainer.every  # the second checkpoint step: latest.pt holds the first

        def diverge(folder=folder, lr=lr, at=at):
            blow_up_lr(at, lr)
            trainer.run(folder)

        code = wait(fork(diverge, log))
        why = f"exit code {code}, expected {DIVERGED_EXIT} (TrainingDiverged)" if code != DIVERGED_EXIT else ""
        why = why or check_loadable(folder, trainer.every)
        if not why:
            rerun = wait(fork(lambda folder=folder: trainer.run(folder), log))
            why = f"the rerun exited with {rerun}" if rerun != 0 else compare(folder, reference)
        row.record(not why, f"lr={lr:g} at step {at}: {why}")


def section_temps(work: Path, rows: dict[str, Row]) -> None:
    """Plant temp files in a run folder, restart a run there, check which survive."""
    from vjepa_ac import checkpoint

    row = row_of(rows, "planted temp files (crashed / live / other machine / old)")
    folder = work / "temps"
    folder.mkdir(parents=True)
    dead = os.fork()
    if not dead:
        os._exit(0)
    os.waitpid(dead, 0)  # a pid that no longer runs
    sleeper = os.fork()
    if not sleeper:
        time.sleep(120)
        os._exit(0)
    me, old = checkpoint._WRITER, time.time() - 7200
    planted = {  # name -> should survive the restart
        f".latest.pt.{me}.{dead}.crash1.tmp": False,
        f".latest.pt.{me}.{sleeper}.live01.tmp": True,
        f".latest.pt.robot-pc-2~4026531836.{dead}.other1.tmp": True,
        ".e3.pt.zq9x8w7v.tmp": False,  # no writer, two hours old
    }
    for name in planted:
        (folder / name).write_bytes(b"half a checkpoint")
    os.utime(folder / ".e3.pt.zq9x8w7v.tmp", (old, old))
    code = wait(fork(lambda: Trainer("ac", 4, 2).run(folder), work / "temps.log"))
    os.kill(sleeper, signal.SIGKILL)
    os.waitpid(sleeper, 0)
    for name, survives in planted.items():
        ok = code == 0 and (folder / name).exists() == survives
        row.record(ok, f"{name}: {'removed' if survives else 'kept'} (run exit code {code})")


def section_inputs(work: Path, quick: bool, rows: dict[str, Row]) -> None:
    import bad_inputs

    def record(outcome):
        name = f"bad input: {outcome.case.command}"
        row = row_of(rows, name)
        row.record(outcome.held, f"{outcome.case.what}: {'; '.join(outcome.reasons)} -- "
                                 f"{outcome.stderr.strip().splitlines()[-1][:160] if outcome.stderr.strip() else ''}")
        row.seconds += outcome.seconds

    bad_inputs.sweep(work / "inputs", quick=quick, on_outcome=record)


def section_fuzz(messages: int, loopback_messages: int, rows: dict[str, Row]) -> dict[str, int]:
    """Fuzzed requests to the server on the MuJoCo arm; every motion the arm makes is checked."""
    import msgpack
    from hypothesis import HealthCheck, Phase, given, settings
    from robot_fakes import FakeClock, fuzz_messages
    from scipy.spatial.transform import Rotation

    from envs.controller import ControllerConfig
    from robot.backends.sim import SimController
    from robot.safety import SafetyLimits
    from robot.server import FrankaServer

    low, high, max_t, max_r = np.array([0.30, -0.08, 0.30]), np.array([0.45, 0.08, 0.45]), 0.03, 0.1
    # The simulated servo's tracking lag, and the IK acceptance of targets it cannot reach exactly (the same
    # tolerances as tests/robot/test_server_process.py).
    tol, rot_tol = 0.01, 0.01 + 10 * ControllerConfig.ik_accept
    limits = SafetyLimits(workspace_low=tuple(low), workspace_high=tuple(high), max_translation=max_t,
                          max_rotation=max_r, gripper_min=0.0, gripper_max=0.8, max_rate_hz=1e9)

    def violations(before: np.ndarray, after: np.ndarray) -> list[str]:
        moved = float(np.linalg.norm(after[:3] - before[:3]))
        turned = float((Rotation.from_euler("xyz", after[3:6]) * Rotation.from_euler("xyz", before[3:6]).inv())
                       .magnitude())
        out = []
        if moved > max_t + tol:
            out.append(f"moved {moved:.3f} m in one step")
        if turned > max_r + rot_tol:
            out.append(f"turned {turned:.3f} rad in one step")
        if np.any(after[:3] < low - tol) or np.any(after[:3] > high + tol):
            out.append(f"left the box at {np.round(after[:3], 3).tolist()}")
        if after[6] > 0.8 + 0.05:
            out.append(f"gripper at {after[6]:.2f}")
        return out

    class CheckedArm(SimController):
        """The sim arm, checking every motion the server commands (home walks included)."""

        problems: ClassVar[list[str]] = []  # set per message

        def step(self, action):
            before = self.observe(images=False)["state"]
            result = super().step(action)
            self.problems += violations(before, self.observe(images=False)["state"])
            return result

        def set_gripper(self, position):
            if position > 0.8:
                self.problems.append(f"gripper commanded to {position:.2f}")
            return super().set_gripper(position)

        def home(self):
            obs = super().home()
            state = self.observe(images=False)["state"]
            if np.any(state[:3] < low - tol) or np.any(state[:3] > high + tol):
                self.problems.append(f"home left the box at {np.round(state[:3], 3).tolist()}")
            return obs

    arm = CheckedArm("FrankaReach-v0", seed=0, image_size=32)
    clock = FakeClock()
    server = FrankaServer(arm, limits, clock=clock)
    server.handle([msgpack.packb({"cmd": "home"})])  # the task's start pose may lie outside this small box
    row = row_of(rows, "robot server fuzz, in process (MuJoCo arm)")
    start = time.monotonic()

    @settings(max_examples=messages, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(fuzz_messages)
    def send(message):
        clock.now += 0.1
        arm.problems = []
        reply = msgpack.unpackb(server.handle([message]), raw=False)
        ok = isinstance(reply, dict) and isinstance(reply.get("ok"), bool) and not arm.problems
        row.record(ok, f"{message[:40]!r}: {arm.problems or reply}")

    send()
    row.seconds = time.monotonic() - start
    arm.close()
    if loopback_messages:
        section_fuzz_loopback(loopback_messages, violations, rows)
    return dict(server.counts)  # shows that the fuzz reached the arm and every limit


def section_fuzz_loopback(messages: int, violations, rows: dict[str, Row]) -> None:
    """The same against a real ``vjepa-franka-server`` process over loopback (the transport and the socket loop
    included): the arm's state is read through a client before and after every raw fuzzed message."""
    import msgpack
    import zmq
    from hypothesis import HealthCheck, Phase, given, settings
    from robot_fakes import fuzz_messages
    from robot_server_process import running_server

    from robot.client import FrankaClient

    row = row_of(rows, "robot server fuzz, loopback (server process)")
    start = time.monotonic()
    box = ("--workspace-low", "0.30", "-0.08", "0.30", "--workspace-high", "0.45", "0.08", "0.45",
           "--max-translation", "0.03", "--max-rotation", "0.1", "--max-rate-hz", "100000",
           "--gripper-range", "0.0", "0.8")
    with running_server(*box) as (_, endpoint), FrankaClient(endpoint, timeout_s=5.0) as client:
        client.home()
        context = zmq.Context.instance()

        @settings(max_examples=messages, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(fuzz_messages)
        def send(message):
            before = client.observe(images=False)["state"]
            raw = context.socket(zmq.REQ)
            raw.setsockopt(zmq.LINGER, 0)
            raw.connect(endpoint)
            try:
                raw.send(message)
                answered = raw.poll(5000)
                reply = msgpack.unpackb(raw.recv(), raw=False) if answered else None
            finally:
                raw.close(0)
            after = client.observe(images=False)["state"]
            try:
                home = msgpack.unpackb(message, raw=False).get("cmd") == "home"
            except Exception:  # noqa: BLE001  not a msgpack map
                home = False
            problems = [] if home else violations(before, after)  # home walks several limited steps
            problems += violations(after, after)  # inside the box in any case
            ok = isinstance(reply, dict) and isinstance(reply.get("ok"), bool) and not problems
            row.record(ok, f"{message[:40]!r}: {problems or ('no reply' if reply is None else reply)}")

        send()
    row.seconds = time.monotonic() - start


# ---------------------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a subset: fewer kills and messages, the quick inputs")
    p.add_argument("--only", default="kill,resume,diverge,temps,input,fuzz",
                   help="comma-separated sections (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--work", help="folder for the runs (default: a temporary folder, removed)")
    args = p.parse_args(argv)
    only = set(args.only.split(","))
    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    for module in ("torch.utils.tensorboard", "vjepa_ac.ac_train", "vjepa_ac.pretrain", "vjepa_ac.video_data"):
        importlib.import_module(module)  # imported once here: every child is forked from this process
    import tqdm

    tqdm.tqdm.monitor_interval = 0  # no tqdm monitor thread: this process forks

    rows: dict[str, Row] = {}
    counts = None
    trainers = [Trainer("ac", total=24, every=4), Trainer("pretrain", total=24, every=3)]
    timings = {}
    with (contextlib.nullcontext(args.work) if args.work else tempfile.TemporaryDirectory(prefix="faults_")) as work:
        work = Path(work)
        work.mkdir(parents=True, exist_ok=True)
        for trainer in trainers if only & {"kill", "resume", "diverge"} else ():
            start = time.monotonic()
            duration = make_reference(trainer, work)
            if only & {"kill", "resume"}:
                section_kill_and_resume(trainer, work, duration, rng, random_kills=3 if args.quick else 8,
                                        quick=args.quick, rows=rows)
            if "resume" in only and trainer.name == "ac":
                section_clean_stops(trainer, work, [5] if args.quick else [3, 5, 10], rows)
            if "diverge" in only:
                section_divergence(trainer, work, rows)
            timings[trainer.name] = time.monotonic() - start
        if "temps" in only:
            section_temps(work, rows)
        if "input" in only:
            start = time.monotonic()
            section_inputs(work, args.quick, rows)
            timings["input"] = time.monotonic() - start
        if "fuzz" in only:
            start = time.monotonic()
            counts = section_fuzz(200 if args.quick else 1000, 0 if args.quick else 200, rows)
            timings["fuzz"] = time.monotonic() - start
    print_table(rows, timings, counts)
    return 0 if all(not row.lost for row in rows.values()) else 1


def print_table(rows: dict[str, Row], timings: dict[str, float], counts) -> None:
    print("\n| case | tried | held | lost |")
    print("|---|---:|---:|---:|")
    for row in rows.values():
        print(f"| {row.case} | {row.tried} | {row.held} | {len(row.lost)} |")
    total = [sum(r.tried for r in rows.values()), sum(r.held for r in rows.values())]
    print(f"| **all** | {total[0]} | {total[1]} | {total[0] - total[1]} |")
    print("\nseconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    if counts:
        print("fuzz, in process: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for row in rows.values():
        if row.notes:
            print(f"{row.case}: latest.pt step after each kill (+tmp: a temp file was left): {' '.join(row.notes)}")
    lost = [(row.case, why) for row in rows.values() for why in row.lost]
    if lost:
        print("\nlost:")
        for case, why in lost:
            print(f"- {case}: {why}")


if __name__ == "__main__":
    sys.exit(main())
