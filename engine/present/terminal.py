"""The summary as a terminal table (``crisis run``, ``merge`` and ``summarize``)."""

from __future__ import annotations

import polars as pl

from .sanitize import terminal_safe

_FORMAT_ORDER = ("overall", "covered_targets", "uncovered_targets", "target", "alliance",
                 "attack_type", "aggressor")
_SCOPE_LABEL = {
    "overall": "overall",
    "covered_targets": "covered targets",
    "uncovered_targets": "uncovered targets",
    "target": "target",
    "alliance": "alliance",
    "attack_type": "attack type",
    "aggressor": "aggressor",
}


def _pct(x, digits: int = 1) -> str:
    return "-" if x is None else f"{100.0 * x:.{digits}f}"


def _num(x, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def format_summary(summary: pl.DataFrame) -> str:
    """Fixed-width text view of a :func:`summary_table` for the terminal.

    Sections in the order overall, covered/uncovered targets, per target, per alliance, per attack
    type, per aggressor; per row: trials, deterrence % with its 95% interval, deterrence lift
    (percentage points), invocation and breakdown % (of attacks), honored % (of the allies'
    commitments in consulted crises), repelled % (of attacks), delay p50/p90 (days,
    over invoked trials) and mean rounds to decide.  ``-`` marks an undefined value.  Names
    (attack types may hold any text) are shown with control characters escaped.
    """
    header = ("", "trials", "deterred % [95% CI]", "lift pp", "invoked %", "breakdown %",
              "honored %", "repelled %", "delay p50", "delay p90", "rounds")
    rows: list[tuple[str, ...] | None] = []
    present = set(summary.get_column("scope").to_list()) if summary.height else set()
    scopes = [s for s in _FORMAT_ORDER if s in present]
    scopes += sorted(present - set(_FORMAT_ORDER))
    for scope in scopes:
        part = summary.filter(pl.col("scope") == scope)
        grouped = scope not in ("overall", "covered_targets", "uncovered_targets")
        if grouped:
            rows.append(None)
            heading = terminal_safe(_SCOPE_LABEL.get(scope, scope))
            rows.append((f"{heading}:",) + ("",) * (len(header) - 1))
        for rec in part.iter_rows(named=True):
            label = (f"  {terminal_safe(rec['key'])}" if grouped
                     else terminal_safe(_SCOPE_LABEL.get(scope, scope)))
            det = rec["deterrence_success_rate"]
            ci = ("-" if det is None else
                  f"{_pct(det)} [{_pct(rec['deterrence_success_rate_low'])}"
                  f"–{_pct(rec['deterrence_success_rate_high'])}]")
            rows.append((
                label,
                "-" if rec["trials"] is None else f"{rec['trials']:,}",
                ci,
                _pct(rec["deterrence_lift"]),
                _pct(rec["invocation_rate"]),
                _pct(rec["breakdown_rate"]),
                _pct(rec.get("honor_rate")),
                _pct(rec["repelled_rate"]),
                _num(rec["delay_p50_days"]),
                _num(rec["delay_p90_days"]),
                _num(rec["rounds_mean"], 2),
            ))
    table = [header] + [r for r in rows if r is not None]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(r: tuple[str, ...]) -> str:
        cells = [r[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(r[1:], widths[1:],
                                                                       strict=True)]
        return "  ".join(cells).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("" if r is None else line(r))
    return "\n".join(out)
