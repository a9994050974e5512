"""What every ``crisis`` command shares: the one map from errors to exit codes.

Exit codes: 0 success; 2 a user error (bad scenario, bad option, refused output folder: the
message names the file, the key and the problem); 130 interrupted; 141 the reader of stdout went
away (``crisis summarize RUN | head -1``: 128 + SIGPIPE, what a shell reports for ``cat`` or
``yes`` there; nothing is printed, and the rest of the output is dropped); 1 an internal error
(a short message; ``crisis --debug …`` shows the traceback).  ``crisis check`` exits 1 for a
regression.  Messages are printed with control characters escaped (names in them come from
scenario files and imported data).
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from ..errors import ConfigError, UserError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE (13)


def _message(err: UserError) -> str:
    """The error's text for a terminal: the engine's own line breaks kept, everything a name
    could smuggle in (ESC sequences, carriage returns, newlines inside a key) escaped."""
    from ..present.sanitize import message_safe, terminal_safe

    if isinstance(err, ConfigError):
        lines = [f"{terminal_safe(err.path)}: {terminal_safe(key)}: {terminal_safe(msg)}" if key
                 else f"{terminal_safe(err.path)}: {terminal_safe(msg)}"
                 for key, msg in err.problems]
        if len(lines) > 1:
            lines.insert(0, f"{terminal_safe(err.path)}: {len(err.problems)} problems")
        return "\n".join(lines)
    return message_safe(err)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing what is left at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (a test runner)
        pass


def _flush_stdout() -> None:
    """Flush buffered output inside the guard, where a closed pipe is handled."""
    stream = sys.stdout
    if stream is not None:
        stream.flush()


def _invoke_guarded(ctx: click.Context, invoke):
    from ..present.sanitize import message_safe

    try:
        result = invoke(ctx)
        _flush_stdout()
        return result
    except BrokenPipeError:
        _silence_stdout()
        ctx.exit(EXIT_BROKEN_PIPE)
    except UserError as err:
        click.echo(f"error: {_message(err)}", err=True)
        ctx.exit(EXIT_USER)
    except click.exceptions.Exit:
        try:
            _flush_stdout()
        except BrokenPipeError:
            _silence_stdout()
            ctx.exit(EXIT_BROKEN_PIPE)
        raise
    except (click.exceptions.Abort, click.ClickException):
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    except Exception as err:  # noqa: BLE001 - the last line of defence
        if isinstance(err, ValueError) and "null byte" in str(err):  # os.stat, open, …
            click.echo("error: a path contains a NUL byte; no file can have that name", err=True)
            ctx.exit(EXIT_USER)
        root = ctx.find_root()
        if root.obj and root.obj.get("debug"):
            traceback.print_exc()
        else:
            click.echo(message_safe(f"internal error: {type(err).__name__}: {err}\n"
                                    "rerun with `crisis --debug …` for the traceback"), err=True)
        ctx.exit(EXIT_INTERNAL)


class CrisisCommand(click.Command):
    """A command whose errors become a message and an exit code (also when run on its own)."""

    def invoke(self, ctx: click.Context):
        return _invoke_guarded(ctx, super().invoke)


class CrisisGroup(click.Group):
    """A group whose commands (and their errors) follow the same exit codes."""

    command_class = CrisisCommand
    group_class = type

    def invoke(self, ctx: click.Context):
        return _invoke_guarded(ctx, super().invoke)
