"""Scale-out: ``distributed`` (a Dask cluster of worker processes) and ``hpc`` (SLURM/PBS
job arrays, status, resubmission).
"""
