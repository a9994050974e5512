"""Many runs of one scenario with common random numbers: ``sweep``, ``sensitivity``,
``calibrate`` (all through ``overall.overall_summary``) and ``compare`` (two run folders, tested).
"""
