"""Backends behind the robot server: `sim` (the MuJoCo arm of `envs`) and `franky` (a real Franka).

Each module is imported only when its backend is built, so the server on a robot computer never loads
MuJoCo and the simulator never needs franky.
"""
