"""Numba kernels: pure functions over arrays, no I/O, no validation (design §1).

Kernels never import engine code.
"""
