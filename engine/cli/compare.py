"""``crisis compare RUN_A RUN_B`` and ``crisis check RUN --against BASELINE``.

Register them on the main group with ``main.add_command(compare_command, "compare")`` and
``main.add_command(check_command, "check")``.  They work stand-alone too: user errors print
``error: …`` and exit with code 2, like the rest of the ``crisis`` command line.  ``check`` exits
with 1 when a measure moved beyond statistical noise (significant after Holm), 0 otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..present.sanitize import csv_safe_frame, message_safe, terminal_safe
from .base import CrisisCommand

EXIT_CHANGED = 1
# shown by default (--all shows every scope and measure); the tests always cover everything
DEFAULT_SCOPES = ("overall", "target", "alliance")
DEFAULT_UNTESTED = ("delay_mean_days", "delay_p50_days", "delay_p90_days", "rounds_mean")
_SCOPE_ORDER = ("overall", "covered_targets", "uncovered_targets", "target", "alliance",
                "attack_type", "aggressor", "period", "survival", "member")
# per-member rows listed in the table format (the rest: one line; json and csv hold them all)
MEMBER_TABLE_ROWS = 15


def _is_rate(measure: str) -> bool:
    from ..core.tables import RATE_COLUMNS

    return measure in RATE_COLUMNS


def _value(x, rate: bool) -> str:
    if x is None:
        return "-"
    return f"{100.0 * x:.2f}%" if rate else f"{x:,.3f}"


def _signed(x, rate: bool) -> str:
    if x is None:
        return "-"
    return f"{100.0 * x:+.2f}" if rate else f"{x:+,.3f}"


def _p(x) -> str:
    if x is None:
        return "-"
    return "<1e-300" if x < 1e-300 else f"{x:.2g}"


def shown(frame, show_all: bool):
    """The rows printed by default: overall, per-target and per-alliance rows, a campaign's last
    period and its alliances' survival, the tested measures and the main delay/rounds means;
    everything with ``show_all``."""
    import polars as pl

    if show_all:
        return frame
    periods = frame.filter(pl.col("scope") == "period").get_column("key")
    last_period = (pl.col("scope") == "period") & (
        pl.col("key") == str(periods.cast(pl.Int64).max()) if periods.len() else pl.lit(False))
    return frame.filter((pl.col("scope").is_in(DEFAULT_SCOPES) | last_period
                         | (pl.col("scope") == "survival"))
                        & ((pl.col("test") != "none") | pl.col("measure").is_in(DEFAULT_UNTESTED)))


def format_comparison(frame) -> str:
    """Fixed-width view: one block per (scope, key), one line per measure.

    Rates are in % (differences and their 95% intervals in percentage points), means in their
    units (days, rounds); ``stat`` is z for rates, the KS distance D for delay distributions and
    P(B > A) over the blocks for runs over posteriors (``posterior_paired``: the interval is the
    paired posterior interval); ``*`` marks a change significant after Holm's correction, or
    for ``posterior_paired`` a posterior interval that excludes 0."""
    header = ("measure", "A", "B", "B - A", "95% CI of B - A", "stat", "p", "p Holm", "")
    rows: list[tuple[str, ...] | str] = []
    order = {s: i for i, s in enumerate(_SCOPE_ORDER)}
    seen: list[tuple[str, str]] = []
    for scope, key in frame.select("scope", "key").unique(maintain_order=True).iter_rows():
        seen.append((scope, key))
    seen.sort(key=lambda sk: order.get(sk[0], len(order)))
    for scope, key in seen:
        part = frame.filter((frame["scope"] == scope) & (frame["key"] == key))
        rows.append(terminal_safe(f"{scope}: {key}" if scope != "overall" else "overall"))
        for r in part.iter_rows(named=True):
            rate = _is_rate(r["measure"])
            ci = ("-" if r["diff_low"] is None else
                  f"[{_signed(r['diff_low'], rate)}, {_signed(r['diff_high'], rate)}]")
            st = r["statistic"]
            stat = "-" if st is None else (
                f"D={st:.4f}" if r["test"] == "ks_binned" else
                f"P(B>A)={st:.2f}" if r["test"] == "posterior_paired" else f"z={st:.2f}")
            rows.append((f"  {terminal_safe(r['measure'])}", _value(r["a"], rate),
                         _value(r["b"], rate), _signed(r["diff"], rate), ci, stat,
                         _p(r["p_value"]), _p(r["p_holm"]), "*" if r["significant"] else ""))
    table = [header] + [r for r in rows if isinstance(r, tuple)]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(r: tuple[str, ...]) -> str:
        cells = [r[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(r[1:], widths[1:],
                                                                       strict=True)]
        return "  ".join(cells).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths).rstrip()]
    for r in rows:
        out.append(r if isinstance(r, str) else line(r))
    return "\n".join(out)


def member_rows(frame):
    """The per-member rows of a comparison (scope ``member``) with ``alliance`` and ``state``
    columns first (split from the ``ALLIANCE/STATE`` key), for scripts."""
    import polars as pl

    from ..experiments.compare import MEMBER_SCOPE

    part = frame.filter(pl.col("scope") == MEMBER_SCOPE)
    ids = part.get_column("key").str.split_exact("/", 1).struct.rename_fields(
        ["alliance", "state"]).struct.unnest()
    return pl.concat([ids, part], how="horizontal")


def format_member_changes(frame, limit: int = MEMBER_TABLE_ROWS) -> str:
    """The per-member honor rates (scope ``member``), the largest changes first (significant
    after Holm, then by |B − A|), at most ``limit`` lines, then how many more there are."""
    import polars as pl

    from ..experiments.compare import MEMBER_SCOPE

    part = frame.filter((pl.col("scope") == MEMBER_SCOPE) & pl.col("diff").is_not_null())
    if part.height == 0:
        return "members: none compared"
    ranked = part.with_columns(pl.col("diff").abs().alias("_size")).sort(
        ["significant", "_size", "key"], descending=[True, True, False])
    header = ("member (alliance/state)", "A", "B", "B - A", "95% CI of B - A", "stat", "p",
              "p Holm", "")
    rows = []
    for r in ranked.head(limit).iter_rows(named=True):
        ci = ("-" if r["diff_low"] is None else
              f"[{_signed(r['diff_low'], True)}, {_signed(r['diff_high'], True)}]")
        stat = "-" if r["statistic"] is None else f"z={r['statistic']:.2f}"
        rows.append((f"  {terminal_safe(r['key'])}", _value(r["a"], True), _value(r["b"], True),
                     _signed(r["diff"], True), ci, stat, _p(r["p_value"]), _p(r["p_holm"]),
                     "*" if r["significant"] else ""))
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(r: tuple[str, ...]) -> str:
        cells = [r[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(r[1:], widths[1:],
                                                                       strict=True)]
        return "  ".join(cells).rstrip()

    out = ["members: honor rate, the largest changes first", line(header),
           "  ".join("-" * w for w in widths).rstrip(), *map(line, rows)]
    more = part.height - len(rows)
    if more:
        out.append(f"… {more:,} more members (--format csv or json lists them all)")
    return "\n".join(out)


@click.command("compare", cls=CrisisCommand)
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="Output format.")
@click.option("--alpha", type=float, default=0.05, show_default=True,
              help="Family-wise error rate of the Holm-corrected tests.")
@click.option("--all", "show_all", is_flag=True,
              help="Every scope and measure (default: overall, per-target and per-alliance rows; "
                   "tested measures and the main means).")
@click.pass_context
def compare_command(ctx: click.Context, run_a: Path, run_b: Path, fmt: str, alpha: float,
                    show_all: bool) -> None:
    """Compare two run folders measure by measure: A, B, B − A with its 95% interval, p-values
    Holm-corrected over every test of the comparison (rates: two-proportion z-test; delays:
    Kolmogorov–Smirnov on the binned delay distributions), and each member's honor rate
    (json: "members"; csv: rows of scope "member", key ALLIANCE/STATE)."""
    import polars as pl

    from ..experiments.compare import compare_runs_with_notes

    frame, notes = compare_runs_with_notes(run_a, run_b, alpha)
    view = shown(frame, show_all)
    n_sig = int(frame.get_column("significant").sum())
    n_tests = int(frame.get_column("p_value").is_not_null().sum())
    members = member_rows(frame)
    if fmt == "json":
        doc = {"a": str(run_a), "b": str(run_b), "alpha": alpha, "tests": n_tests,
               "significant": n_sig, "notes": notes, "rows": view.to_dicts(),
               "members": members.to_dicts()}
        click.echo(json.dumps(doc, indent=2, allow_nan=False))
        return
    if fmt == "csv":
        if not show_all:  # the member rows always (scope "member", key "ALLIANCE/STATE")
            view = pl.concat([view, members.drop("alliance", "state")])
        click.echo(csv_safe_frame(view).write_csv(), nl=False)
        for note in notes:
            click.echo(f"note: {message_safe(note)}", err=True)
        return
    click.echo(f"A = {run_a}\nB = {run_b}\n")
    click.echo(format_comparison(view))
    if not show_all:
        click.echo("\n" + format_member_changes(frame))
    click.echo(f"\n{n_tests} tests, Holm-corrected at alpha = {alpha}: {n_sig} significant"
               + ("" if show_all else " (in all scopes; --all shows every row)"))
    for note in notes:
        click.echo(f"note: {message_safe(note)}")


@click.command("check", cls=CrisisCommand)
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--against", "baseline", type=click.Path(path_type=Path), required=True,
              help="The baseline run folder (e.g. the previous engine version's run).")
@click.option("--alpha", type=float, default=0.01, show_default=True,
              help="Family-wise false-alarm rate (Holm-corrected over every test).")
@click.pass_context
def check_command(ctx: click.Context, run: Path, baseline: Path, alpha: float) -> None:
    """Exit 1 when any measure of RUN moved beyond statistical noise against BASELINE
    (significant after Holm's correction), printing what moved; exit 0 otherwise."""
    from ..experiments.compare import compare_runs_with_notes

    frame, notes = compare_runs_with_notes(baseline, run, alpha)
    for note in notes:
        click.echo(f"note: {message_safe(note)}")
    moved = frame.filter(frame["significant"])
    n_tests = int(frame.get_column("p_value").is_not_null().sum())
    if moved.height == 0:
        click.echo(f"no significant change ({n_tests} tests, Holm-corrected at alpha = {alpha})")
        return
    click.echo(f"{moved.height} of {n_tests} measures moved beyond statistical noise "
               f"(Holm-corrected at alpha = {alpha}; A = {baseline}, B = {run}):")
    click.echo(format_comparison(moved))
    ctx.exit(EXIT_CHANGED)
