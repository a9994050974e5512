"""Readable names for imported worlds: COW state names and well-known ATOP alliances.

State names are the Correlates of War State System Membership list's ``statenme`` (COW
``states2016``, its spellings kept: "Wuerttemburg", "Ivory Coast", "Swaziland", "Vietnam" for
DRV), written out here for every state of that list, i.e. every ``stateabb`` in
``cinc-polity.csv`` (the data folder has no names column).  Keys are COW abbreviations
(``stateabb``), so a name follows the code the capability file uses; they are grouped by COW
region and ordered by COW code (``ccode``).  An abbreviation not listed keeps itself as its name.

Alliance names are keyed by ATOP v4.01 ``atopid``.  Each id was matched in
``atop-alliance-level.csv`` / ``atop-member-level.csv`` by its members (COW codes) and its
``begyr``, and the obligations checked against the treaty (query in the comment of each row:
members ⊇ {…}, begyr).  The name is written as a comment above the alliance; ids stay
``ATOP<id>`` (the scenario schema has no alliance name field).
"""

from __future__ import annotations

COW_STATE_NAMES: dict[str, str] = {
    # Americas (2-165)
    "USA": "United States of America", "CAN": "Canada", "BHM": "Bahamas", "CUB": "Cuba",
    "HAI": "Haiti", "DOM": "Dominican Republic", "JAM": "Jamaica", "TRI": "Trinidad and Tobago",
    "BAR": "Barbados", "DMA": "Dominica", "GRN": "Grenada", "SLU": "St. Lucia",
    "SVG": "St. Vincent and the Grenadines", "AAB": "Antigua & Barbuda",
    "SKN": "St. Kitts and Nevis", "MEX": "Mexico", "BLZ": "Belize", "GUA": "Guatemala",
    "HON": "Honduras", "SAL": "El Salvador", "NIC": "Nicaragua", "COS": "Costa Rica",
    "PAN": "Panama", "COL": "Colombia", "VEN": "Venezuela", "GUY": "Guyana", "SUR": "Suriname",
    "ECU": "Ecuador", "PER": "Peru", "BRA": "Brazil", "BOL": "Bolivia", "PAR": "Paraguay",
    "CHL": "Chile", "ARG": "Argentina", "URU": "Uruguay",
    # Europe (200-395)
    "UKG": "United Kingdom", "IRE": "Ireland", "NTH": "Netherlands", "BEL": "Belgium",
    "LUX": "Luxembourg", "FRN": "France", "MNC": "Monaco", "LIE": "Liechtenstein",
    "SWZ": "Switzerland", "SPN": "Spain", "AND": "Andorra", "POR": "Portugal", "HAN": "Hanover",
    "BAV": "Bavaria", "GMY": "Germany", "GFR": "German Federal Republic",
    "GDR": "German Democratic Republic", "BAD": "Baden", "SAX": "Saxony", "WRT": "Wuerttemburg",
    "HSE": "Hesse Electoral", "HSG": "Hesse Grand Ducal", "MEC": "Mecklenburg Schwerin",
    "POL": "Poland", "AUH": "Austria-Hungary", "AUS": "Austria", "HUN": "Hungary",
    "CZE": "Czechoslovakia", "CZR": "Czech Republic", "SLO": "Slovakia", "ITA": "Italy",
    "PAP": "Papal States", "SIC": "Two Sicilies", "SNM": "San Marino", "MOD": "Modena",
    "PMA": "Parma", "TUS": "Tuscany", "MLT": "Malta", "ALB": "Albania", "MNG": "Montenegro",
    "MAC": "Macedonia", "CRO": "Croatia", "YUG": "Yugoslavia", "BOS": "Bosnia and Herzegovina",
    "KOS": "Kosovo", "SLV": "Slovenia", "GRC": "Greece", "CYP": "Cyprus", "BUL": "Bulgaria",
    "MLD": "Moldova", "ROM": "Romania", "RUS": "Russia", "EST": "Estonia", "LAT": "Latvia",
    "LIT": "Lithuania", "UKR": "Ukraine", "BLR": "Belarus", "ARM": "Armenia", "GRG": "Georgia",
    "AZE": "Azerbaijan", "FIN": "Finland", "SWD": "Sweden", "NOR": "Norway", "DEN": "Denmark",
    "ICE": "Iceland",
    # Africa (402-626)
    "CAP": "Cape Verde", "STP": "Sao Tome and Principe", "GNB": "Guinea-Bissau",
    "EQG": "Equatorial Guinea", "GAM": "Gambia", "MLI": "Mali", "SEN": "Senegal", "BEN": "Benin",
    "MAA": "Mauritania", "NIR": "Niger", "CDI": "Ivory Coast", "GUI": "Guinea",
    "BFO": "Burkina Faso", "LBR": "Liberia", "SIE": "Sierra Leone", "GHA": "Ghana", "TOG": "Togo",
    "CAO": "Cameroon", "NIG": "Nigeria", "GAB": "Gabon", "CEN": "Central African Republic",
    "CHA": "Chad", "CON": "Congo", "DRC": "Democratic Republic of the Congo", "UGA": "Uganda",
    "KEN": "Kenya", "TAZ": "Tanzania", "ZAN": "Zanzibar", "BUI": "Burundi", "RWA": "Rwanda",
    "SOM": "Somalia", "DJI": "Djibouti", "ETH": "Ethiopia", "ERI": "Eritrea", "ANG": "Angola",
    "MZM": "Mozambique", "ZAM": "Zambia", "ZIM": "Zimbabwe", "MAW": "Malawi", "SAF": "South Africa",
    "NAM": "Namibia", "LES": "Lesotho", "BOT": "Botswana", "SWA": "Swaziland", "MAG": "Madagascar",
    "COM": "Comoros", "MAS": "Mauritius", "SEY": "Seychelles", "MOR": "Morocco", "ALG": "Algeria",
    "TUN": "Tunisia", "LIB": "Libya", "SUD": "Sudan", "SSD": "South Sudan",
    # Middle East (630-698)
    "IRN": "Iran", "TUR": "Turkey", "IRQ": "Iraq", "EGY": "Egypt", "SYR": "Syria", "LEB": "Lebanon",
    "JOR": "Jordan", "ISR": "Israel", "SAU": "Saudi Arabia", "YAR": "Yemen Arab Republic",
    "YEM": "Yemen", "YPR": "Yemen People's Republic", "KUW": "Kuwait", "BAH": "Bahrain",
    "QAT": "Qatar", "UAE": "United Arab Emirates", "OMA": "Oman",
    # Asia (700-860)
    "AFG": "Afghanistan", "TKM": "Turkmenistan", "TAJ": "Tajikistan", "KYR": "Kyrgyzstan",
    "UZB": "Uzbekistan", "KZK": "Kazakhstan", "CHN": "China", "MON": "Mongolia", "TAW": "Taiwan",
    "KOR": "Korea", "PRK": "North Korea", "ROK": "South Korea", "JPN": "Japan", "IND": "India",
    "BHU": "Bhutan", "PAK": "Pakistan", "BNG": "Bangladesh", "MYA": "Myanmar", "SRI": "Sri Lanka",
    "MAD": "Maldives", "NEP": "Nepal", "THI": "Thailand", "CAM": "Cambodia", "LAO": "Laos",
    "DRV": "Vietnam", "RVN": "Republic of Vietnam", "MAL": "Malaysia", "SIN": "Singapore",
    "BRU": "Brunei", "PHI": "Philippines", "INS": "Indonesia", "ETM": "East Timor",
    # Oceania (900-990)
    "AUL": "Australia", "PNG": "Papua New Guinea", "NEW": "New Zealand", "VAN": "Vanuatu",
    "SOL": "Solomon Islands", "KIR": "Kiribati", "TUV": "Tuvalu", "FIJ": "Fiji", "TON": "Tonga",
    "NAU": "Nauru", "MSI": "Marshall Islands", "PAL": "Palau",
    "FSM": "Federated States of Micronesia", "WSM": "Samoa",
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
    """The COW ``statenme`` of a state, or its abbreviation where COW has no such code."""
    return COW_STATE_NAMES.get(abbreviation, abbreviation)


def alliance_name(atopid: int) -> str | None:
    """The common name of a well-known ATOP alliance, or None."""
    return ALLIANCE_NAMES.get(int(atopid))
