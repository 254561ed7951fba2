#!/usr/bin/env python
"""What the full-size V-JEPA 2-AC model needs (random ViT-g + AC predictor plans one action on CPU): a thin
shim over ``vjepa_ac.dry_run`` (flags and table: its docstring, or --help).

    python benchmarks/full_size_dry_run.py                     # defaults: 8 samples, 1 iteration, horizon 1
    python benchmarks/full_size_dry_run.py --samples 16 --iterations 2 --horizon 2 --threads 2
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vjepa_ac.dry_run import main

if __name__ == "__main__":
    sys.exit(main())
