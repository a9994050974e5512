"""Run folders: ``folder`` (:class:`RunFolder`, the one place that names, writes and reads
every file of a run — a new output belongs there), ``io`` (atomic writes), ``runner`` (run,
checkpoint, resume, in-memory runs) and ``merge`` (shards → one run).
"""
