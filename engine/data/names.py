"""Readable names for imported worlds: COW state names and well-known ATOP alliances.

State names are the Correlates of War State System Membership list's ``statenme`` (COW 2016),
written out here by hand for a curated set of states only (the data folder has no names
column); every other state keeps its COW abbreviation as its name.  Keys are COW abbreviations
(``stateabb``), so a name follows the code the capability file uses.

Alliance names are keyed by ATOP v4.01 ``atopid``.  Each id was matched in
``atop-alliance-level.csv`` / ``atop-member-level.csv`` by its members (COW codes) and its
``begyr``, and the obligations checked against the treaty (query in the comment of each row:
members ⊇ {…}, begyr).  The name is written as a comment above the alliance; ids stay
``ATOP<id>`` (the scenario schema has no alliance name field).
"""

from __future__ import annotations

COW_STATE_NAMES: dict[str, str] = {
    "USA": "United States of America", "CAN": "Canada", "MEX": "Mexico", "CUB": "Cuba",
    "BRA": "Brazil", "ARG": "Argentina", "CHL": "Chile", "COL": "Colombia", "VEN": "Venezuela",
    "PER": "Peru", "UKG": "United Kingdom", "IRE": "Ireland", "NTH": "Netherlands",
    "BEL": "Belgium", "LUX": "Luxembourg", "FRN": "France", "SWZ": "Switzerland",
    "SPN": "Spain", "POR": "Portugal", "GMY": "Germany", "GFR": "German Federal Republic",
    "GDR": "German Democratic Republic", "AUH": "Austria-Hungary", "AUS": "Austria",
    "HUN": "Hungary", "CZE": "Czechoslovakia", "POL": "Poland", "ITA": "Italy",
    "ALB": "Albania", "YUG": "Yugoslavia", "GRC": "Greece", "BUL": "Bulgaria",
    "ROM": "Romania", "RUS": "Russia", "EST": "Estonia", "LAT": "Latvia", "LIT": "Lithuania",
    "UKR": "Ukraine", "BLR": "Belarus", "GRG": "Georgia", "FIN": "Finland", "SWD": "Sweden",
    "NOR": "Norway", "DEN": "Denmark", "TUR": "Turkey", "IRN": "Iran", "IRQ": "Iraq",
    "EGY": "Egypt", "SYR": "Syria", "ISR": "Israel", "SAU": "Saudi Arabia",
    "AFG": "Afghanistan", "CHN": "China", "TAW": "Taiwan", "PRK": "North Korea",
    "ROK": "South Korea", "JPN": "Japan", "IND": "India", "PAK": "Pakistan",
    "THI": "Thailand", "PHI": "Philippines", "AUL": "Australia", "NEW": "New Zealand",
    "SAF": "South Africa",
}

# atopid -> name.  Matched by (members ⊇ COW codes, begyr) in atop-*-level.csv, v4.01.
ALLIANCE_NAMES: dict[int, str] = {
    1350: "Triple Alliance (Germany, Austria-Hungary, Italy)",  # {255,300,325}, 1882
    1380: "Franco-Russian entente (consultation)",              # {220,365}, 1891
    1385: "Franco-Russian military convention",                 # {220,365}, 1893/94
    2015: "Pact of London (Triple Entente, 1914)",              # {200,220,365}, 1914
    2060: "Franco-Polish alliance (1921)",                      # {220,290}, 1921
    2135: "Franco-Polish guarantee, Locarno (1925)",           # {220,290}, 1925
    2360: "Franco-Soviet mutual assistance treaty (1935)",      # {220,365}, 1935
    2395: "Anti-Comintern Pact",                                # {255,740}, 1936
    2440: "Anglo-Polish alliance (1939)",                       # {200,290}, 1939 Apr/Aug
    2445: "Pact of Steel (Germany, Italy)",                     # {255,325}, 1939
    2470: "Molotov-Ribbentrop Pact",                            # {255,365}, 1939
    2515: "Tripartite Pact (Axis)",                             # {255,325,740}, 1940
    3015: "Arab League pact (1945)",                            # {651,652,663}, 1945
    3030: "Sino-Soviet treaty (1945)",                          # {365,710}, 1945
    3075: "Rio Pact (Inter-American Treaty of Reciprocal Assistance)",  # {2,140,160}, 1947
    3180: "NATO (North Atlantic Treaty)",                       # {2,200,220}, 1949
    3200: "Sino-Soviet treaty (1950)",                          # {365,710}, 1950
    3205: "Arab League Joint Defence Treaty (1950)",            # {651,652,663}, 1950
    3215: "ANZUS",                                              # {2,900,920}, 1951
    3220: "US-Japan security treaty (1951)",                    # {2,740}, 1951
    3240: "US-ROK mutual defense treaty",                       # {2,732}, 1953
    3260: "SEATO (Manila Pact)",                                # {2,200,800,840}, 1954
    3285: "Warsaw Pact",                                        # {290,315,365}, 1955
    3375: "US-Japan security treaty (1960)",                    # {2,740}, 1960
    4220: "Collective Security Treaty (Tashkent; CSTO)",        # {365,371,702}, 1992
}


def state_name(abbreviation: str) -> str:
    """The COW name of a state where curated here, else its abbreviation."""
    return COW_STATE_NAMES.get(abbreviation, abbreviation)


def alliance_name(atopid: int) -> str | None:
    """The common name of a well-known ATOP alliance, or None."""
    return ALLIANCE_NAMES.get(int(atopid))
