"""Lets the tests (and benchmarks/fault_suite.py) import the sweep helpers (bad_inputs.py) by module name."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
