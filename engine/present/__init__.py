"""What people read: ``plots`` (PNG/SVG figures), ``report`` (one HTML page) and ``terminal``
(the summary as a terminal table).
"""
