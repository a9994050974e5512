"""The summary and the per-member results as terminal tables (``crisis run``, ``merge`` and
``summarize``)."""

from __future__ import annotations

import polars as pl

from ..core.tables import members_by_reliability
from .sanitize import terminal_safe

# the most members listed by format_members (the least reliable; the rest in one line)
MEMBER_ROWS = 20

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


def member_label(name: str | None, state: str) -> str:
    """``Estonia (EST)``, or the id alone when the state has no name (unescaped)."""
    return f"{name} ({state})" if name and name != state else state


def format_members(members: pl.DataFrame, limit: int = MEMBER_ROWS,
                   more_hint: str = "") -> str:
    """Fixed-width view of a members table (``members.parquet``): the least reliable members
    first (lowest honor rate, ties by more pledges; :func:`members_by_reliability`), at most
    ``limit`` rows, then one line saying how many more there are (``more_hint`` says where to
    find them) and how many memberships never pledged.

    Per row: alliance, member (name and id), pledged crises, backed % (in this alliance's
    consultation), delivered %, honored % with its 95% Wilson interval (backed and delivered),
    free rode % — every rate of the pledged crises.  Names are shown with control characters
    escaped."""
    ranked = members_by_reliability(members)
    never = members.height - ranked.height
    header = ("alliance", "member", "pledged", "backed %", "delivered %",
              "honored % [95% CI]", "free rode %")
    rows = []
    for rec in ranked.head(limit).iter_rows(named=True):
        honor = rec["honor_rate"]
        ci = ("-" if honor is None else
              f"{_pct(honor)} [{_pct(rec['honor_rate_low'])}–{_pct(rec['honor_rate_high'])}]")
        rows.append((terminal_safe(rec["alliance"]),
                     terminal_safe(member_label(rec["name"], rec["state"])),
                     f"{rec['pledged']:,}", _pct(rec["backing_rate"]),
                     _pct(rec["delivery_rate"]), ci, _pct(rec["free_riding_rate"])))
    if not rows:
        text = "no member pledged in any consulted crisis"
        return text + (f" ({never:,} memberships)" if never else "")
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(r: tuple[str, ...]) -> str:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])] + [
            v.rjust(w) for v, w in zip(r[2:], widths[2:], strict=True)]
        return "  ".join(cells).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    more = ranked.height - len(rows)
    if more:
        out.append(f"… {more:,} more members{more_hint}")
    if never:
        out.append(f"({never:,} memberships never pledged: their alliance was never consulted "
                   f"with them as an ally)")
    return "\n".join(out)


# ---- campaigns (design §7) -------------------------------------------------------------------

# the most periods format_periods shows (evenly spaced, with the first and the last)
PERIOD_ROWS = 12


def evenly_spaced(n: int, limit: int) -> list[int]:
    """Row indices of at most ``limit`` rows out of ``n``, evenly spaced, always with the first
    and the last (every row when ``n <= limit``; ``limit`` ≥ 2)."""
    if limit < 2:
        raise ValueError(f"limit must be at least 2 (the first and the last row), not {limit}")
    if n <= limit:
        return list(range(n))
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})


def _mean(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def format_periods(periods: pl.DataFrame, max_rows: int = PERIOD_ROWS,
                   more_hint: str = "") -> str:
    """Fixed-width view of a campaign run's table by period (``periods.parquet``, design §7).

    Per period: crises, deterrence % of the crises with its 95% Wilson interval, aggression
    success % and breakdown % of the attacks, then at the end of the period the means over the
    trajectories of reputation, resolve multiplier and threat, and the counts over all
    trajectories of exits, joins and dissolved alliances.  At most ``max_rows`` (≥ 2) periods,
    evenly spaced with the first and the last (:func:`evenly_spaced`), then one line saying how
    many were left out (``more_hint`` says where to find them).  ``-`` marks an undefined value
    (no crisis, or no attack, in the period)."""
    header = ("period", "crises", "deterred % [95% CI]", "aggression success %", "breakdown %",
              "reputation", "resolve ×", "threat", "exits", "joins", "dissolved")
    ordered = periods.sort("period")
    shown = evenly_spaced(ordered.height, max_rows)
    rows = []
    for i in shown:
        rec = ordered.row(i, named=True)
        det = rec["deterrence_success_rate"]
        ci = ("-" if det is None else
              f"{_pct(det)} [{_pct(rec['deterrence_success_rate_low'])}"
              f"–{_pct(rec['deterrence_success_rate_high'])}]")
        rows.append((f"{rec['period']:,}", f"{rec['crises']:,}", ci,
                     _pct(rec["aggression_success_rate"]), _pct(rec["breakdown_rate"]),
                     _mean(rec["reputation_mean"]), _mean(rec["resolve_multiplier_mean"]),
                     _mean(rec["threat_mean"]), f"{rec['exits']:,}", f"{rec['joins']:,}",
                     f"{rec['dissolved']:,}"))
    if not rows:
        return "no periods"
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    out = ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)).rstrip()
           for r in table]
    out.insert(1, "  ".join("-" * w for w in widths))
    left_out = ordered.height - len(shown)
    if left_out:
        out.append(f"… {left_out:,} of {ordered.height:,} periods not shown (evenly spaced "
                   f"rows){more_hint}")
    return "\n".join(out)


def format_campaign_line(campaign: dict) -> str:
    """One line about a campaign run from its manifest's ``campaign`` section: periods per
    trajectory, crises in all and (when recorded) the throughput in trial-periods per second."""
    steps = campaign.get("steps")
    parts = [f"campaign: {steps:,} period{'s' * (steps != 1)}" if isinstance(steps, int)
             else "campaign"]
    crises = campaign.get("crises")
    if isinstance(crises, int):
        parts.append(f"{crises:,} crises")
    rate = campaign.get("trial_periods_per_s")
    if isinstance(rate, int | float) and rate > 0:
        parts.append(f"{rate / 1e6:.2f} M trial-periods/s")
    return ", ".join(parts)
