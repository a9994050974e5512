"""crisis-engine: Monte Carlo engine for collective-security crises in military alliances."""

__version__ = "0.1.0"
