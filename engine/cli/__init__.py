"""The ``crisis`` command line: thin commands over :mod:`engine.api` and the library; ``base``
holds the one map from errors to exit codes.  A new command goes in ``main`` (or a module of its
own registered there) and calls the API."""

from .main import main

__all__ = ["main"]
