"""Errors a user can act on: each names the file, the key path and the problem."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input or request; the CLI prints it and exits with code 2."""


class ConfigError(UserError):
    """One or more problems in a scenario file."""

    def __init__(self, path: str, problems: list[tuple[str, str]]):
        self.path = str(path)
        self.problems = problems
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [f"{self.path}: {key}: {msg}" if key else f"{self.path}: {msg}"
                 for key, msg in self.problems]
        if len(lines) > 1:
            lines.insert(0, f"{self.path}: {len(self.problems)} problems")
        return "\n".join(lines)
