#!/usr/bin/env python
"""Thin shim: ``python scripts/deploy.py ...`` = ``vjepa-deploy ...`` (vjepa_ac/cli/deploy.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vjepa_ac.cli.deploy import main

if __name__ == "__main__":
    sys.exit(main())
