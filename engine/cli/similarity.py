"""``crisis similarity CONFIG``: alliance-portfolio similarity of every pair of states.

Register it on the main group with ``main.add_command(similarity_command)`` (its name is
``similarity``).  It works stand-alone too: user errors print ``error: …`` and exit with code 2,
like the rest of the ``crisis`` command line.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UserError
from ..model.similarity import ALIASES, DEFAULT_MEASURES, MEASURES
from ..present.sanitize import csv_safe_frame, terminal_safe_frame
from .base import CrisisCommand

OUT_SUFFIXES = (".parquet", ".csv")


def _write(path: Path, frame) -> None:
    from ..runs.io import atomic_write, write_parquet

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        write_parquet(path, frame)
    else:
        atomic_write(path, lambda tmp: csv_safe_frame(frame).write_csv(tmp))


def _render_table(frame) -> str:
    import polars as pl

    floats = [c for c, dt in frame.schema.items() if dt == pl.Float64]
    shown = frame.with_columns(pl.col(floats).round(4)) if floats else frame
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, tbl_width_chars=200):
        return str(terminal_safe_frame(shown))


@click.command("similarity", cls=CrisisCommand)
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--year", type=int, help="Instead of CONFIG: the world of YEAR from ATOP/COW "
              "(files as `crisis import atop` takes them).")
@click.option("--data", "data_folder", type=click.Path(file_okay=False, exists=True,
                                                       path_type=Path),
              help="With --year: folder holding the dataset files under their usual names, for "
                   "every file option omitted (default: the `crisis data` cache).")
@click.option("--alliances", type=click.Path(dir_okay=False, path_type=Path),
              help="With --year: ATOP alliance-level CSV (default: from the data folder).")
@click.option("--members", type=click.Path(dir_okay=False, path_type=Path),
              help="With --year: ATOP member-level CSV (default: from the data folder).")
@click.option("--capabilities", type=click.Path(dir_okay=False, path_type=Path),
              help="With --year: COW capabilities CSV (default: from the data folder).")
@click.option("--measure", "measures", multiple=True,
              type=click.Choice([*MEASURES, *sorted(ALIASES)]),
              help="Measure to compute (repeatable; default: "
                   + ", ".join(DEFAULT_MEASURES) + ").")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the table to FILE.parquet or FILE.csv (atomically) instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table",
              show_default=True, help="Stdout format when there is no --out.")
@click.option("--ordered", is_flag=True,
              help="All ordered pairs (a ≠ b) instead of a < b in file order.")
@click.pass_context
def similarity_command(ctx: click.Context, config: Path | None, year: int | None,
                       data_folder: Path | None, alliances: Path | None,
                       members: Path | None, capabilities: Path | None,
                       measures: tuple[str, ...], out_path: Path | None, fmt: str,
                       ordered: bool) -> None:
    """Alliance-portfolio similarity of every pair of states in the scenario CONFIG.

    Valued ties: 3 defense, 2 neutrality/nonaggression, 1 consultation, 0 none (3 with itself).
    Measures: s (Signorino & Ritter's S, alias s_score), s_weighted (capability-weighted S),
    tau_b (Kendall's tau-b), kappa (Cohen's weighted kappa, quadratic; kappa_linear: linear).
    One row per pair a < b (file order); NaN where a measure is undefined (constant portfolio).
    """
    source = config
    if year is not None:
        if config is not None:
            raise UserError("give either CONFIG or --year, not both")
        if data_folder is not None or None in (alliances, members, capabilities):
            from ..data.registry import data_files

            files = data_files(data_folder, {"atop-alliances": alliances,
                                             "atop-members": members, "cinc": capabilities})
            alliances, members, capabilities = files.values()
        source = (year, alliances, members, capabilities)
    elif config is None:
        raise UserError("missing CONFIG (a scenario file), or --year (ATOP/COW files from "
                        "--data DIR, the `crisis data` cache or --alliances/--members/"
                        "--capabilities)")
    elif data_folder is not None or None not in (alliances, members, capabilities):
        raise UserError("--data, --alliances, --members and --capabilities go with --year")
    _run(source, measures or DEFAULT_MEASURES, out_path, fmt, ordered)


def _scenario(source):
    """The scenario of a file, or of a year's world imported from ATOP/COW."""
    from ..model.config import load_scenario, scenario_from_dict

    if isinstance(source, tuple):
        import tomllib

        from ..data.atop import build_world

        year, alliances, members, capabilities = source
        text = build_world(year, alliances, members, capabilities,
                           aggressors=_any_state(year, capabilities))
        return scenario_from_dict(tomllib.loads(text), f"<ATOP/COW world {year}>")
    return load_scenario(source)


def _any_state(year: int, capabilities: Path) -> list[str]:
    """A scenario needs an aggressor; similarity ignores it, so take the year's first state."""
    import polars as pl

    try:
        frame = pl.read_csv(capabilities, infer_schema_length=0, columns=["stateabb", "year"])
    except (OSError, pl.exceptions.PolarsError) as err:
        raise UserError(f"{capabilities}: cannot read ({err})") from None
    states = frame.filter(pl.col("year") == str(min(year, 2012)))["stateabb"].to_list()
    if not states:
        raise UserError(f"{capabilities}: no states in {year}")
    return [states[0]]


def _run(config, measures, out_path: Path | None, fmt: str, ordered: bool) -> None:
    from ..model.compile import compile_scenario
    from ..model.similarity import similarity_table

    if out_path is not None:
        if out_path.suffix.lower() not in OUT_SUFFIXES:
            raise UserError(f"{out_path}: --out must end in .parquet or .csv")
        if not out_path.parent.is_dir():
            raise UserError(f"{out_path}: folder {out_path.parent} does not exist")
    compiled = compile_scenario(_scenario(config))
    frame = similarity_table(compiled, measures, ordered=ordered)
    if out_path is not None:
        try:
            _write(out_path, frame)
        except OSError as err:
            raise UserError(f"{out_path}: cannot write: {err.strerror or err}") from None
        what = f"world {config[0]}" if isinstance(config, tuple) else str(config)
        click.echo(f"{what}: {frame.height} pairs × {frame.width - 2} measures → {out_path}",
                   err=True)
    elif fmt == "csv":
        click.echo(csv_safe_frame(frame).write_csv(), nl=False)
    else:
        click.echo(_render_table(frame))
