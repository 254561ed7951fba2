"""The project's tests as a regular package.

draccus (the config library) ships a top-level ``tests`` package in its wheel. A regular package anywhere on
``sys.path`` wins over a namespace package, so without this file ``tests.ac_train.test_training`` would resolve
into draccus's tests, and processes spawned by the DDP tests (which import their worker by module name) fail.
"""
