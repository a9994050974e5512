"""Real data: scenarios built from the public datasets (ATOP, COW, MIDs) in ``atop``.
"""
