"""Lets the deploy tests import their shared helpers (deploy_fakes.py, deploy_serverproc.py) by module name."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
