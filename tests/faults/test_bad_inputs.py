"""The quick subset of the bad-input sweep (bad_inputs.py; all of it: benchmarks/fault_suite.py --only input).

Every command line, each given a few hostile inputs, as a real (forked) process: exit code 2 for usage errors
and 1 for data errors, exactly one stderr line naming the file or field, no traceback, no pickle payload run.
"""
from pathlib import Path

import bad_inputs


def test_quick_sweep_every_command_holds(tmp_path):
    outcomes = bad_inputs.sweep(tmp_path, quick=True, timeout=90)
    assert {o.case.command for o in outcomes} == set(bad_inputs.COMMANDS)  # every command is in the subset
    lost = [f"{o.case.command} / {o.case.what}: {'; '.join(o.reasons)}: {o.stderr.strip()[-300:]}"
            for o in outcomes if not o.held]
    assert not lost, "\n".join(lost)


def test_the_judge_refuses_what_the_sweep_must_catch(tmp_path):
    """A traceback, a second line, a wrong exit code, a line that names nothing, a payload that ran: all lost."""
    case = bad_inputs.Case("evaluate", "x", [], code=1, names="bad.pt")
    good = "error: bad.pt: not a readable torch.save file\n"

    def judged(code, stderr, payload_ran=False):
        return bad_inputs.judge(bad_inputs.Outcome(case, code, stderr, 0.1, payload_ran))

    assert judged(1, good) == []
    assert judged(1, "Traceback (most recent call last):\n  File ...\nKeyError: 'encoder'\n")
    assert judged(1, "warning: something\n" + good)
    assert judged(2, good)
    assert judged(1, "error: not a readable torch.save file\n")
    assert judged(1, good, payload_ran=True)
    assert judged(None, "")  # killed after the timeout


def test_a_payload_that_runs_is_seen(tmp_path):
    """The sweep's payload really runs when a file is loaded unsafely (so 'no payload ran' means something)."""
    import torch

    marker = tmp_path / "marker"
    torch.save({"x": bad_inputs.Payload(marker)}, tmp_path / "evil.pt")
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert Path(marker).exists()
