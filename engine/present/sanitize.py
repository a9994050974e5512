"""Names from scenario files and imported data, made safe for the places they are shown.

Scenario *names*, attack-type names (free TOML keys) and state names may hold any text; state
and alliance ids are ``[A-Za-z0-9_-]`` only, but may start with ``-``.  Three outlets need care:

* **terminals** (:func:`terminal_safe`): control characters — C0 (newline, tab and ESC
  included), DEL, C1 — and the Unicode line separators and bidirectional overrides are shown as
  visible escapes (``\\x1b``, ``\\n``, ``\\u202e``), so a name cannot move the cursor, recolour
  or retitle the terminal, start a hyperlink (OSC 8) or fake an extra line of output;
* **CSV files** (:func:`csv_safe_frame`): a text cell that starts with ``=``, ``+``, ``-``,
  ``@``, tab or carriage return gets a leading ``'`` (OWASP, "CSV Injection"), so a spreadsheet
  shows it as text instead of running it as a formula; numbers are never touched;
* **figures** (:func:`plot_safe`): ``$`` becomes ``\\$``, which matplotlib draws as a literal
  ``$`` instead of starting mathtext (an unbalanced or invalid formula in a name made ``plot``
  and ``report`` fail), and control characters become the terminal escapes (SVG is XML, which
  forbids most of them).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

# C0 controls, DEL, C1 controls, line/paragraph separators, bidirectional embeddings, overrides
# and isolates (the "Trojan Source" characters)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                                "\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# first characters a spreadsheet reads as the start of a formula (OWASP CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: object) -> str:
    """``text`` with every control character replaced by a visible escape (one line)."""
    return _UNSAFE.sub(_escape, str(text))


def message_safe(text: object) -> str:
    """Like :func:`terminal_safe`, but keeps newlines and tabs: for multi-line messages whose
    lines are the engine's own (escape the names inside with :func:`terminal_safe` first)."""
    return _UNSAFE_KEEP_LINES.sub(_escape, str(text))


def plot_safe(text: object) -> str:
    """A label for a matplotlib figure, drawn literally: every ``$`` escaped as ``\\$`` (so no
    mathtext) and control characters as visible escapes."""
    return terminal_safe(text).replace("$", "\\$")


def csv_cell(value: str) -> str:
    """One text cell, prefixed with ``'`` when a spreadsheet would read it as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _is_text(dtype) -> bool:
    import polars as pl

    return dtype == pl.String or dtype == pl.Categorical or isinstance(dtype, pl.Enum)


def csv_safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` ready for ``write_csv``: every text cell (and column name) that starts with a
    formula character gets a leading ``'``; numeric columns are unchanged."""
    import polars as pl

    exprs = []
    for name, dtype in frame.schema.items():
        if _is_text(dtype):
            col = pl.col(name).cast(pl.String)
            risky = col.str.starts_with(FORMULA_STARTS[0])
            for start in FORMULA_STARTS[1:]:
                risky = risky | col.str.starts_with(start)
            exprs.append(pl.when(risky).then(pl.lit("'") + col).otherwise(col).alias(name))
    out = frame.with_columns(exprs) if exprs else frame
    renamed = {c: csv_cell(c) for c in out.columns if csv_cell(c) != c}
    return out.rename(renamed) if renamed else out


def terminal_safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` ready to print: control characters in text cells and column names escaped
    (columns without any are left as they are, without a pass in Python)."""
    import polars as pl

    exprs = []
    for name, dtype in frame.schema.items():
        if _is_text(dtype):
            col = frame.get_column(name).cast(pl.String)
            if col.str.contains(_UNSAFE.pattern).any():
                exprs.append(col.map_elements(terminal_safe, return_dtype=pl.String))
    out = frame.with_columns(exprs) if exprs else frame
    renamed = {c: terminal_safe(c) for c in out.columns if terminal_safe(c) != c}
    return out.rename(renamed) if renamed else out
