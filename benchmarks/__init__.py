"""Performance suite: Population.train_step beside the alternatives a user would pick.

Run ``python -m benchmarks.train_step`` (see benchmarks/README.md). Not part of the tests.
"""
