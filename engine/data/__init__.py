"""Real data: scenarios built from the public datasets (ATOP, COW, MIDs) in ``atop``, state and
alliance names in ``names``, and the registry of the datasets (pinned SHA-256, citations, the
verified cache of ``crisis data``) in ``registry``.
"""
