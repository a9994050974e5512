"""``crisis similarity CONFIG``: alliance-portfolio similarity of every pair of states.

Register it on the main group with ``main.add_command(similarity_command)`` (its name is
``similarity``).  It works stand-alone too: user errors print ``error: …`` and exit with code 2,
like the rest of the ``crisis`` command line.
"""

from __future__ import annotations

from pathlib import Path

import click

from .errors import UserError
from .similarity import ALIASES, DEFAULT_MEASURES, MEASURES

EXIT_USER = 2
OUT_SUFFIXES = (".parquet", ".csv")


def _write(path: Path, frame) -> None:
    from .io import atomic_write, write_parquet

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        write_parquet(path, frame)
    else:
        atomic_write(path, lambda tmp: frame.write_csv(tmp))


def _render_table(frame) -> str:
    import polars as pl

    floats = [c for c, dt in frame.schema.items() if dt == pl.Float64]
    shown = frame.with_columns(pl.col(floats).round(4)) if floats else frame
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, tbl_width_chars=200):
        return str(shown)


@click.command("similarity")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
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
def similarity_command(ctx: click.Context, config: Path, measures: tuple[str, ...],
                       out_path: Path | None, fmt: str, ordered: bool) -> None:
    """Alliance-portfolio similarity of every pair of states in the scenario CONFIG.

    Valued ties: 3 defense, 2 neutrality/nonaggression, 1 consultation, 0 none (3 with itself).
    Measures: s (Signorino & Ritter's S, alias s_score), s_weighted (capability-weighted S),
    tau_b (Kendall's tau-b), kappa (Cohen's weighted kappa, quadratic; kappa_linear: linear).
    One row per pair a < b (file order); NaN where a measure is undefined (constant portfolio).
    """
    try:
        _run(config, measures or DEFAULT_MEASURES, out_path, fmt, ordered)
    except UserError as err:
        click.echo(f"error: {err}", err=True)
        ctx.exit(EXIT_USER)


def _run(config: Path, measures, out_path: Path | None, fmt: str, ordered: bool) -> None:
    from .compile import compile_scenario
    from .config import load_scenario
    from .similarity import similarity_table

    if out_path is not None:
        if out_path.suffix.lower() not in OUT_SUFFIXES:
            raise UserError(f"{out_path}: --out must end in .parquet or .csv")
        if not out_path.parent.is_dir():
            raise UserError(f"{out_path}: folder {out_path.parent} does not exist")
    compiled = compile_scenario(load_scenario(config))
    frame = similarity_table(compiled, measures, ordered=ordered)
    if out_path is not None:
        try:
            _write(out_path, frame)
        except OSError as err:
            raise UserError(f"{out_path}: cannot write: {err.strerror or err}") from None
        click.echo(f"{config}: {frame.height} pairs × {frame.width - 2} measures → {out_path}",
                   err=True)
    elif fmt == "csv":
        click.echo(frame.write_csv(), nl=False)
    else:
        click.echo(_render_table(frame))
