"""What every ``crisis`` command shares: the one map from errors to exit codes.

Exit codes: 0 success; 2 a user error (bad scenario, bad option, refused output folder: the
message names the file, the key and the problem); 130 interrupted; 1 an internal error (a short
message; ``crisis --debug …`` shows the traceback).  ``crisis check`` exits 1 for a regression.
"""

from __future__ import annotations

import traceback

import click

from ..errors import UserError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_INTERRUPTED = 130


def _invoke_guarded(ctx: click.Context, invoke):
    try:
        return invoke(ctx)
    except UserError as err:
        click.echo(f"error: {err}", err=True)
        ctx.exit(EXIT_USER)
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    except Exception as err:  # noqa: BLE001 - the last line of defence
        root = ctx.find_root()
        if root.obj and root.obj.get("debug"):
            traceback.print_exc()
        else:
            click.echo(f"internal error: {type(err).__name__}: {err}\n"
                       "rerun with `crisis --debug …` for the traceback", err=True)
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
