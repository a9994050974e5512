"""``crisis import …``: build scenario files from public datasets (thin; the library works).

Registered on the main group as ``crisis import``.  The group handles library errors itself, so
it behaves the same when invoked alone (tests) as under ``crisis``: a :class:`UserError` prints
``error: …`` and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UserError
from .base import CrisisGroup


@click.group(name="import", cls=CrisisGroup)
def import_group() -> None:
    """Build a scenario file from public datasets."""


_FILE = click.Path(dir_okay=False, path_type=Path)


@import_group.command()
@click.option("--year", type=int, required=True,
              help="Year of the world (ATOP alliances in force; CINC ends in 2012).")
@click.option("--alliances", "alliances_csv", type=_FILE, required=True,
              help="ATOP v4.01 alliance-level CSV (atop-alliance-level.csv).")
@click.option("--members", "members_csv", type=_FILE, required=True,
              help="ATOP v4.01 member-level CSV (atop-member-level.csv).")
@click.option("--capabilities", "capabilities_csv", type=_FILE, required=True,
              help="COW capabilities CSV with stateabb, ccode, year, cinc (cinc-polity.csv).")
@click.option("--disputes", "disputes_csv", type=_FILE,
              help="GML MID dyad-year CSV: aggressors = top dispute originators of Y-10..Y-1.")
@click.option("--aggressor", "aggressors", multiple=True, metavar="CODE",
              help="Aggressor state (COW abbreviation, e.g. RUS); repeatable.")
@click.option("--out", type=_FILE, required=True, help="Scenario file to write (TOML).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def atop(year, alliances_csv, members_csv, capabilities_csv, disputes_csv, aggressors, out,
         force):
    """Scenario of YEAR from ATOP alliances and COW capabilities (and GML disputes)."""
    from ..data.atop import import_world
    from ..runs.io import write_bytes

    if out.exists() and not force:
        raise UserError(f"{out}: exists; pass --force to overwrite")
    if out.exists() and out.is_dir():
        raise UserError(f"{out}: is a folder, not a file")
    world = import_world(year, alliances_csv, members_csv, capabilities_csv, disputes_csv,
                         tuple(a.strip() for a in aggressors))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(out, world.toml.encode("utf-8"))
    except OSError as err:
        raise UserError(f"{out}: cannot write: {err.strerror or err}") from None
    click.echo(f"wrote {out}: {world.summary()}")
