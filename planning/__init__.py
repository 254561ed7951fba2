"""Latent-space planning: planners over a world model, receding-horizon control and closed-loop evaluation.

Modules: `world_model` (the WorldModel protocol, OracleWorldModel), `cem`, `mppi`, `gradient` (planners),
`mpc` (MPC, run_episode, run_controller), `evaluate` (reports, videos, energy landscape), `torchrl_policy`
(WorldModelPlanner, a torchrl MPCPlannerBase). See docs/planning.md.
"""
