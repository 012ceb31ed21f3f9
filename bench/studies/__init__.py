"""Benchmark studies: scripts that measure maskbench's solvers and pipelines, each run as
``python -m bench.studies.<name>`` (its module docstring states what it measures and its command).
They use the library (``bench``, ``models``, ``solvers``, ``reports``); nothing in the library imports them.
"""
