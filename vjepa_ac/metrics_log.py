"""Scalar logging to a CSV file and TensorBoard, on rank 0 only.

``MetricsLogger(log_dir).log(step, {"loss": 0.3, "lr": 1e-3})`` appends one CSV row (column ``step``
plus one column per metric) and writes the same scalars to TensorBoard. A metric that appears for
the first time later in the run adds a column (the file is rewritten with the wider header), so no
value is ever dropped. Re-opening an existing ``metrics.csv`` (resume) appends to it.
On ranks other than 0 every call is a no-op.
"""
from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path

from vjepa_ac.distributed import is_main_process


class MetricsLogger:
    def __init__(self, log_dir: str | os.PathLike, tensorboard: bool = True, enabled: bool | None = None,
                 csv_name: str = "metrics.csv"):
        self.enabled = is_main_process() if enabled is None else enabled
        self.log_dir = Path(log_dir)
        self.csv_path = self.log_dir / csv_name
        self._fields: list[str] = ["step"]
        self._writer = None
        if not self.enabled:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.csv_path.exists() and self.csv_path.stat().st_size > 0:
            with open(self.csv_path, newline="") as f:
                header = next(csv.reader(f), None)
            if not header or header[0] != "step":
                raise ValueError(f"{self.csv_path}: expected a metrics CSV whose first column is 'step', "
                                 f"got header {header}")
            self._fields = header
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir / "tb"))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        values = {k: float(v) for k, v in metrics.items()}
        new = [k for k in values if k not in self._fields]
        if new:
            self._widen(new)
        write_header = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        with open(self.csv_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._fields)
            if write_header:
                w.writeheader()
            w.writerow({"step": int(step), **values})
        if self._writer is not None:
            for k, v in values.items():
                if math.isfinite(v):
                    self._writer.add_scalar(k, v, int(step))

    def _widen(self, new_fields: list[str]) -> None:
        rows = []
        if self.csv_path.exists() and self.csv_path.stat().st_size > 0:
            with open(self.csv_path, newline="") as f:
                rows = list(csv.DictReader(f))
        self._fields = self._fields + new_fields
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._fields)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.csv_path)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_metrics(path: str | os.PathLike) -> dict[str, list[float]]:
    """Read a metrics CSV back as columns (empty cells become NaN)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: [float(r[k]) if r.get(k) not in (None, "") else math.nan for r in rows] for k in rows[0]}
