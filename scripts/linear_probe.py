#!/usr/bin/env python
"""Thin shim: ``python scripts/linear_probe.py ...`` runs vjepa_ac/cli/linear_probe.py (see its --help)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vjepa_ac.cli.linear_probe import main

if __name__ == "__main__":
    sys.exit(main())
