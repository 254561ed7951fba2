#!/usr/bin/env python
"""Thin shim: ``python scripts/franka_server.py ...`` = ``vjepa-franka-server ...`` (robot/cli.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robot.cli import main

if __name__ == "__main__":
    sys.exit(main())
