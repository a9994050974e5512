"""COW state names (``engine.data.names``): every code of the capability file has its COW
``statenme``, and the names are clean and tell the states apart.  The check against the real
data file is skipped without ../shared/data; the others need no data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from engine.data.names import COW_STATE_NAMES, state_name

DATA = Path(__file__).parent.parent.parent / "shared" / "data"
CINC = DATA / "cinc-polity.csv"

# Codes that may share a name: one state under two COW codes.  COW 2016 names every code
# differently (GMY "Germany" / GFR "German Federal Republic", YEM "Yemen" / YAR "Yemen Arab
# Republic", DRV "Vietnam" / RVN "Republic of Vietnam"), so there are none; add a frozenset of
# the codes here if one is ever wanted.
SAME_STATE: set[frozenset[str]] = set()


def _codes_in_cinc() -> dict[str, set[int]]:
    codes: dict[str, set[int]] = {}
    with CINC.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            codes.setdefault(row["stateabb"], set()).add(int(row["ccode"]))
    return codes


@pytest.mark.skipif(not CINC.is_file(), reason=f"{CINC} (the real public data) is absent")
def test_every_code_in_the_capability_file_has_a_name():
    codes = _codes_in_cinc()
    assert len(codes) > 200
    assert all(len(ccodes) == 1 for ccodes in codes.values())  # one COW code per abbreviation
    missing = sorted(abb for abb in codes if abb not in COW_STATE_NAMES)
    assert not missing, f"no COW name for {missing}"
    unused = sorted(set(COW_STATE_NAMES) - set(codes))
    assert not unused, f"names for codes the capability file lacks: {unused}"
    assert all(state_name(abb) != abb for abb in codes)


def test_names_are_clean_and_distinct():
    for abb, name in COW_STATE_NAMES.items():
        assert abb == abb.strip().upper() and len(abb) == 3, abb
        assert name and name == name.strip() and "  " not in name, (abb, name)
    by_name: dict[str, set[str]] = {}
    for abb, name in COW_STATE_NAMES.items():
        by_name.setdefault(name, set()).add(abb)
    shared = {frozenset(abbs) for abbs in by_name.values() if len(abbs) > 1}
    assert shared <= SAME_STATE, f"codes sharing a name: {sorted(map(sorted, shared))}"


@pytest.mark.parametrize(("abb", "name"), [
    ("USA", "United States of America"), ("RUS", "Russia"), ("CHN", "China"), ("JPN", "Japan"),
    ("GFR", "German Federal Republic"), ("BEN", "Benin"), ("NIG", "Nigeria"),
    ("NIR", "Niger"), ("LEB", "Lebanon"), ("DRV", "Vietnam"), ("RVN", "Republic of Vietnam"),
    ("YAR", "Yemen Arab Republic"), ("ZAN", "Zanzibar"), ("SOM", "Somalia"),
    ("SSD", "South Sudan"), ("ETM", "East Timor"), ("MNG", "Montenegro"), ("MON", "Mongolia"),
    ("SWZ", "Switzerland"), ("SWA", "Swaziland"), ("AUS", "Austria"), ("AUL", "Australia"),
])
def test_known_names(abb, name):
    assert state_name(abb) == name


def test_unknown_code_keeps_its_abbreviation():
    assert state_name("XYZ") == "XYZ"
