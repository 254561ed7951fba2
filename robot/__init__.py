"""robot: the stack that moves a Franka, simulated or real (see docs/deployment.md).

`FrankaController` (robot.interface) is the one interface the planner's control loop drives. The robot-side
`FrankaServer` (robot.server) serves one backend (robot.backends: `sim` for the MuJoCo arm of `envs`,
`franky` for a real arm) over ZeroMQ behind the wire protocol (robot.protocol) and the safety layer
(robot.safety); `FrankaClient` (robot.client) is the same interface on the workstation, and
`RecordingController` (robot.recording) writes what it saw as a DROID episode.

Imports point one way: robot may import `envs` (only the sim backend does), `envs` never imports robot.
"""
from robot.interface import FrankaController, StepResult

__all__ = ["FrankaController", "StepResult"]
