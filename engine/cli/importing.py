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
@click.option("--year", type=int,
              help="Year of the world (ATOP alliances in force; CINC ends in 2012).")
@click.option("--date", "day", metavar="YYYY-MM-DD",
              help="Instead of --year: alliances and members in force that day "
                   "(capabilities of its year).")
@click.option("--data", "data_folder", type=click.Path(file_okay=False, exists=True,
                                                       path_type=Path),
              help="Folder holding the dataset files under their usual names, used for every "
                   "file option omitted (default: the `crisis data` cache).")
@click.option("--alliances", "alliances_csv", type=_FILE,
              help="ATOP v4.01 alliance-level CSV (default: atop-alliance-level.csv of the "
                   "data folder).")
@click.option("--members", "members_csv", type=_FILE,
              help="ATOP v4.01 member-level CSV (default: atop-member-level.csv of the data "
                   "folder).")
@click.option("--capabilities", "capabilities_csv", type=_FILE,
              help="COW capabilities CSV (default: cinc-polity.csv of the data folder), or "
                   "your own with the columns stateabb, ccode, year and cinc (or milex, "
                   "milper) for later years.")
@click.option("--capability", "measure", default="cinc", show_default=True,
              type=click.Choice(["cinc", "milex", "milper", "military"]),
              help="Capability measure: CINC, military expenditure or personnel share, or "
                   "military = mean of the milex and milper shares.")
@click.option("--disputes", "disputes_csv", type=_FILE,
              help="GML MID dyad-year CSV: aggressors = top dispute originators of Y-10..Y-1 "
                   "(default when the data folder is used: its gml-ddy-disputes-2.03.csv).")
@click.option("--rivalries", "rivalries_csv", type=_FILE,
              help="Thompson & Dreyer strategic rivalries CSV (for --dyads rivalries|all; "
                   "default when the data folder is used: its td-strategic-rivalries.csv).")
@click.option("--dyads", type=click.Choice(["disputes", "rivalries", "all"]),
              help="Aggressor -> target pairs from the directed disputes (side A -> side B) "
                   "and/or the strategic rivalries of the --window years before, weighted "
                   "by count (default: the top dispute originators, see --disputes).")
@click.option("--window", type=click.IntRange(min=1), default=10, show_default=True,
              help="Years before the world's year that --dyads looks at.")
@click.option("--aggressor", "aggressors", multiple=True, metavar="CODE",
              help="Aggressor state (COW abbreviation or code, e.g. RUS or 365); repeatable.")
@click.option("--target", "targets", multiple=True, metavar="CODE",
              help="Target state (COW abbreviation or code, e.g. POL or 290); repeatable: "
                   "restricts the targets to these.")
@click.option("--out", type=_FILE, required=True, help="Scenario file to write (TOML).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def atop(year, day, data_folder, alliances_csv, members_csv, capabilities_csv, measure,
         disputes_csv, rivalries_csv, dyads, window, aggressors, targets, out, force):
    """Scenario of a year (or day) from ATOP alliances and COW capabilities (and GML
    disputes, strategic rivalries).

    Without --alliances, --members or --capabilities (or with --data DIR), the omitted files
    come from the data folder (--data, else the verified `crisis data` cache), the GML disputes
    and rivalries included where the folder has them."""
    from ..data.atop import import_world, parse_date
    from ..runs.io import write_bytes

    if (year is None) == (day is None):
        raise UserError("give exactly one of --year YEAR and --date YYYY-MM-DD")
    date = parse_date(day) if day is not None else None
    if out.exists() and not force:
        raise UserError(f"{out}: exists; pass --force to overwrite")
    if out.exists() and out.is_dir():
        raise UserError(f"{out}: is a folder, not a file")
    if data_folder is not None or None in (alliances_csv, members_csv, capabilities_csv):
        alliances_csv, members_csv, capabilities_csv, disputes_csv, rivalries_csv = \
            _from_data_folder(data_folder, alliances_csv, members_csv, capabilities_csv,
                              disputes_csv, rivalries_csv)
    world = import_world(date.year if date else year, alliances_csv, members_csv,
                         capabilities_csv, disputes_csv, tuple(a.strip() for a in aggressors),
                         date=date, targets=tuple(t.strip() for t in targets), dyads=dyads,
                         rivalries_csv=rivalries_csv, window=window, capability=measure)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(out, world.toml.encode("utf-8"))
    except OSError as err:
        raise UserError(f"{out}: cannot write: {err.strerror or err}") from None
    click.echo(f"wrote {out}: {world.summary()}")


def _from_data_folder(folder, alliances, members, capabilities, disputes, rivalries):
    """The file options, each omitted one taken from the data folder: ``--data`` as given,
    else the cache, which must hold the needed files verified.  Disputes and rivalries come
    from it only where the folder has them (from the cache: verified)."""
    from ..data.registry import data_files

    files = data_files(folder, {"atop-alliances": alliances, "atop-members": members,
                                "cinc": capabilities, "gml-mids": disputes,
                                "rivalries": rivalries}, optional=("gml-mids", "rivalries"))
    return tuple(files.values())
