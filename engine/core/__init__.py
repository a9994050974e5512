"""Simulation and its exact tallies: ``simulate`` (the one caller of the Numba kernel),
``tables`` (tallies → Polars cells/summary/records tables) and ``statistics`` (Wilson intervals,
histogram quantiles).  No files, no command line.
"""
