"""``crisis data …``: the registry of public datasets (thin; :mod:`engine.data.registry` works).

Registered on the main group as ``crisis data``.  ``fetch`` downloads pinned files from a
mirror (``--mirror URL`` or ``$CRISIS_DATA_MIRROR``; there is no default, because no official
location is known to serve the exact pinned bytes), ``add DIR`` installs local copies, ``list``
shows what the cache holds.  The cache is ``$CRISIS_DATA_DIR`` or the user's data folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .base import CrisisGroup


@click.group(name="data", cls=CrisisGroup)
def data_group() -> None:
    """The public datasets the engine reads: fetch, add and list the pinned copies."""


@data_group.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--mirror", metavar="URL",
              help="Base URL serving the files under their names (URL/atop-alliance-level.csv); "
                   "default $CRISIS_DATA_MIRROR. Required: no official location is known to "
                   "serve the pinned versions.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no per-file lines.")
def fetch(names, mirror, quiet):
    """Download datasets (NAME, default: all) from a mirror, verify their SHA-256, cache them."""
    from ..data.registry import cache_dir
    from ..data.registry import fetch as do_fetch

    echo = None if quiet else click.echo
    paths = do_fetch(names, mirror, progress=not quiet and sys.stderr.isatty(), echo=echo)
    if not quiet:
        click.echo(f"{len(paths)} dataset(s) verified in {cache_dir()}")


@data_group.command()
@click.argument("source", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.argument("names", nargs=-1, metavar="[NAME]...")
def add(source, names):
    """Verify the dataset files in DIR (or only those NAMEd) and install them in the cache."""
    from ..data.registry import add as do_add
    from ..data.registry import cache_dir

    paths = do_add(source, names, echo=click.echo)
    click.echo(f"{len(paths)} dataset(s) installed in {cache_dir()}")


@data_group.command(name="list")
@click.option("--data", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to check instead of the cache.")
@click.option("--full", is_flag=True,
              help="Also print each dataset's full citation, terms and source page.")
def list_command(folder, full):
    """Show which datasets are present and verified, with their citations."""
    from ..data.registry import cache_dir, status
    from ..present.sanitize import terminal_safe

    where = cache_dir() if folder is None else folder
    rows = status(where)
    header = ("name", "file", "present", "verified", "size", "citation")
    table = [header] + [
        (r.entry.name, r.entry.file, "yes" if r.present else "no",
         "yes" if r.verified else ("NO (hash differs)" if r.present else "-"),
         f"{r.size_bytes:,}" if r.size_bytes is not None else "-", r.entry.short_citation)
        for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    click.echo(f"data folder: {terminal_safe(str(where))}")
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                   + "  " + row[-1])
    verified = sum(r.verified for r in rows)
    click.echo(f"{verified} of {len(rows)} verified")
    if full:
        for r in rows:
            e = r.entry
            click.echo(f"\n{e.name} ({e.file}): {e.title}\n  sha256: {e.sha256}\n"
                       f"  cite: {e.citation}\n  terms: {e.terms}\n  source: {e.source}")
