"""Benchmarks: named ``workloads`` and ``benchmark`` (``crisis bench``, the history, baselines).
"""
