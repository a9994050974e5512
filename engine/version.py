"""The engine's version, recorded in every manifest and checked on resume and merge."""

__version__ = "0.1.0"
