"""The ``crisis`` command line: thin commands over the Python API and the library."""

from .main import main

__all__ = ["main"]
