#!/usr/bin/env python
"""Thin shim: ``python scripts/train_ac.py ...`` = ``vjepa-train-ac ...`` (vjepa_ac/cli/train_ac.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vjepa_ac.cli.train_ac import main

if __name__ == "__main__":
    sys.exit(main())
