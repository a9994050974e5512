"""``crisis plot`` and ``crisis report``: figures and an HTML page of a run (or a sweep).

Register them on the main group with ``main.add_command(plot_command, "plot")`` and
``main.add_command(report_command, "report")``.  They work stand-alone too: user errors print
``error: …`` and exit with code 2, like the rest of the ``crisis`` command line.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UserError
from .base import CrisisCommand

HEADLINE = ("deterrence_success_rate", "invocation_rate", "breakdown_rate", "honor_rate",
            "free_riders_mean", "delay_p50_days", "delay_p90_days", "rounds_mean")


def _sweep_columns(frame) -> tuple[list[str], list[str]]:
    """(parameter columns, measure columns) of a sweep table.

    Measures are the float columns named like summary rates and means (bounds ``_low``/``_high``
    go with their measure); parameters are the columns before the first measure or count."""
    from ..core.tables import COUNT_COLUMNS, MEAN_COLUMNS, RATE_COLUMNS

    known = set(RATE_COLUMNS) | set(MEAN_COLUMNS)
    bounds = {f"{r}_{s}" for r in RATE_COLUMNS for s in ("low", "high")}
    skip = known | bounds | set(COUNT_COLUMNS) | {"scope", "key"}
    params = [c for c in frame.columns if c not in skip]
    measures = [c for c in frame.columns if c in known and frame[c].null_count() < frame.height]
    if not params:
        raise UserError("sweep: no parameter column (every column is a measure)")
    if not measures:
        raise UserError("sweep: no measure column (e.g. deterrence_success_rate)")
    return params, measures


@click.command("plot", cls=CrisisCommand)
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the figures (default: RUN_DIR/plots/, or next to the sweep file).")
@click.option("--measure", "chosen", multiple=True,
              help="Sweep measures to draw (repeatable; default: the headline measures; "
                   "`all` for every one).")
def plot_command(source: Path, out_dir: Path | None, chosen: tuple[str, ...]) -> None:
    """Draw the figures (PNG and SVG) of a run folder, or of a sweep table SWEEP.parquet.

    A campaign run (a scenario with [campaign]) also gets its figures by period: rates,
    alliance survival, reputation/resolve/threat and successful aggressions per trajectory.
    For a sweep, every measure is plotted against the first parameter column (one curve per
    value of a second parameter column when it has at most 8 values)."""
    if source.suffix.lower() == ".parquet" and not source.is_dir():
        import polars as pl

        from ..present.plots import parameter_label, plot_sweep

        if not source.is_file():
            raise UserError(f"{source}: no such sweep file")
        try:
            frame = pl.read_parquet(source)
        except (OSError, pl.exceptions.PolarsError) as err:
            raise UserError(f"{source}: cannot read the sweep: {err}") from None
        params, measures = _sweep_columns(frame)
        if "all" not in chosen:
            wanted = list(chosen) or [m for m in HEADLINE if m in measures]
            unknown = [m for m in wanted if m not in measures]
            if unknown:
                raise UserError(f"--measure {', '.join(unknown)}: not in the sweep "
                                f"(choose from {', '.join(measures)})")
            measures = wanted or measures
        x = params[0]
        # a second parameter with a few values: one curve per value
        hue = (params[1] if len(params) > 1 and frame[params[1]].n_unique() <= 8
               else None)
        folder = out_dir if out_dir is not None else source.parent / f"{source.stem}-plots"
        paths = plot_sweep(frame, x, measures, hue=hue, out_stem=folder / source.stem,
                           title=f"{source.stem}: measures vs {parameter_label(x)}")
    else:
        from ..present.plots import plot_run

        paths = plot_run(source, out_dir)
    for path in paths:
        click.echo(str(path))


@click.command("report", cls=CrisisCommand)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write (default: RUN_DIR/report.html).")
def report_command(run_dir: Path, out_path: Path | None) -> None:
    """Write one self-contained HTML page with the run's scenario, tables and figures."""
    from ..present.report import write_report

    path = write_report(run_dir, out_path)
    click.echo(f"report → {path}")
