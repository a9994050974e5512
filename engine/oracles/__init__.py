"""Slow, readable implementations that agree with the kernel draw for draw: ``reference``
(vectorized NumPy) and ``python_loop`` (one trial at a time).  They grow with the kernel.
"""
