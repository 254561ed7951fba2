#!/usr/bin/env python
"""Thin shim: ``python scripts/collect_ogbench.py ...`` runs vjepa_ac/cli/collect_ogbench.py (see its --help)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vjepa_ac.cli.collect_ogbench import main

if __name__ == "__main__":
    sys.exit(main())
