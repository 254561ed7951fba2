#!/usr/bin/env python
"""Thin shim: ``python scripts/demo.py ...`` = ``vjepa-demo ...`` (vjepa_ac/cli/demo.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vjepa_ac.cli.demo import main

if __name__ == "__main__":
    sys.exit(main())
