"""Lets the robot tests import their shared helpers (robot_fakes.py, robot_server_process.py) by module name."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
