"""Property-based hardening: any scenario file or CLI argument yields a result or a clear error.

Scenario files (raw text, mutated valid scenarios, deeply nested documents) must either load into
a :class:`Scenario` that compiles, or raise :class:`ConfigError` whose message starts with the
file path; never another exception type and never a hang.  Through the CLI, ``crisis validate``
and ``crisis run`` must exit with 0 or 2 and never print a traceback.

Two tiers: a fast default (a couple of hundred examples per property) and a ``slow`` tier that
runs tens of thousands of cases in total.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.cli.main import main
from engine.errors import ConfigError
from engine.model.compile import compile_scenario
from engine.model.config import Scenario, load_scenario, scenario_from_dict

ROOT = Path(__file__).parent.parent
NATO = ROOT / "configs" / "nato-baltic-2024.toml"

FAST = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CLI_FAST = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# slow tier: 8,000 structured (20,000 took 245 s on 2 cores) + 10,000 raw-text + 2,000 nested
# scenario cases, 300 `crisis run` invocations
SLOW_STRUCTURED = 8_000
SLOW_RAW = 10_000
SLOW_NESTED = 2_000
SLOW_CLI = 300


def slow(n: int) -> settings:
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


# No single case may take this long (a "hang"), even on a loaded machine.
HANG_S = 20.0

# A valid scenario that touches every section: two alliances (one with a veto, one with
# protected members), two aggressors, two attack types and exposure pairs.
BASE = {
    "scenario": {"name": "fuzz", "seed": 3, "trials": 1000, "misperception": 0.5,
                 "outcome_noise": 0.3, "mobilization_days": 2.0, "window_days": math.inf,
                 "interoperability_bonus": 0.1, "defection_threshold": 0.9,
                 "conflict_penalty": 0.1, "threat_weight": 0.2},
    "states": [
        {"id": "A", "name": "Alpha", "capability": 1.0, "commitment": 0.5, "stability": 0.9,
         "free_riding": 0.1},
        {"id": "B", "capability": 0.2, "commitment": 0.6},
        {"id": "C", "capability": 0.3, "commitment": 0.7},
        {"id": "R", "capability": 1.0, "commitment": 0.5},
    ],
    "alliances": [
        {"id": "X", "members": ["A", "B", "C"], "protected": ["B", "C"], "quota": 0.5,
         "round_days": 1.0, "max_rounds": 5, "integration": 0.2, "bindingness": 0.8,
         "intel_sharing": 0.3},
        {"id": "Y", "members": ["A", "B"], "obligation": "consultation",
         "decision_rule": "veto", "veto_holders": ["A"]},
    ],
    "aggressors": [
        {"state": "R", "weight": 2.0, "resolve": 1.0, "targets": {"B": 1.0, "C": 2.0},
         "attack_mix": {"conv": 1.0, "cyber": 0.5}},
        {"state": "C", "targets": {"A": 1.0}, "attack_mix": {"cyber": 1.0}},
    ],
    "attack_types": {"conv": {"severity": 1.0, "attribution_days": 0.0, "ambiguity": 0.0},
                     "cyber": {"severity": 0.5, "attribution_days": 3.0, "ambiguity": 0.4}},
    "exposure": {"default": 1.0, "A.B": 0.5},
}

# ---------------------------------------------------------------------------------------------
# The property
# ---------------------------------------------------------------------------------------------


def check_scenario(scenario: Scenario) -> None:
    """A scenario that validated must compile, into finite numbers where the engine needs them."""
    compiled = compile_scenario(scenario)
    assert compiled.n_cells > 0
    for name in ("capability", "capability_units", "commitment", "aggressor_cum_weight",
                 "target_cum_weight", "mix_cum_weight", "severity", "exposure", "quota"):
        values = np.asarray(getattr(compiled, name), dtype=np.float64)
        assert np.all(np.isfinite(values)), (name, values)
    assert math.isfinite(compiled.capability.sum())
    for name in ("aggressor_cum_weight", "target_cum_weight", "mix_cum_weight"):
        values = np.asarray(getattr(compiled, name))
        assert np.all((values >= 0.0) & (values <= 1.0)), (name, values)


def check_config_error(err: ConfigError, source: str) -> None:
    assert err.path == source
    assert str(err).startswith(source)
    assert err.problems
    for key, msg in err.problems:
        assert isinstance(key, str) and isinstance(msg, str) and msg


def assert_loads_or_config_error(path: Path) -> None:
    start = time.perf_counter()
    try:
        scenario = load_scenario(path)
    except ConfigError as err:
        check_config_error(err, str(path))
    else:
        check_scenario(scenario)
    assert time.perf_counter() - start < HANG_S


def assert_dict_or_config_error(data, source: str = "fuzz.toml") -> None:
    start = time.perf_counter()
    try:
        scenario = scenario_from_dict(data, source)
    except ConfigError as err:
        check_config_error(err, source)
    else:
        check_scenario(scenario)
    assert time.perf_counter() - start < HANG_S


_TMP = Path(tempfile.mkdtemp(prefix="crisis-fuzz-"))


def write(name: str, content: str | bytes) -> Path:
    path = _TMP / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

SPECIAL_FLOATS = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, -1e308, 5e-324,
                  1.7976931348623157e308, 1e-300, 0.5, 1.0, 2.0]
SPECIAL_INTS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), 2**64, 10**30, 10**13 + 1,
                127, 128]
keys = st.one_of(
    st.sampled_from(["id", "name", "state", "members", "capability", "commitment", "seed",
                     "trials", "default", "from", "A", "B", "C", "R", "A.B", "R.A", "conv",
                     "bogus", "", " ", "ß", "x.y.z"]),
    st.text(max_size=8),
)
scalars = st.one_of(
    st.sampled_from(SPECIAL_FLOATS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0.0, max_value=1.0),
    st.sampled_from(SPECIAL_INTS),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["A", "B", "C", "R", "X", "conv", "cyber", "defense", "veto", "majority",
                     "qualified", "neutrality", "nan", "inf", "1.0", "0", "é", "🚀", "a" * 65,
                     "jaccard", "s-score"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=4)),
    max_leaves=8,
)


def _paths(node, prefix=()):
    """Every (path, value) in a nested dict/list document, the root excluded."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        yield prefix + (k,), v
        if isinstance(v, dict | list):
            yield from _paths(v, prefix + (k,))


def _get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


@st.composite
def mutated_scenarios(draw):
    """The valid BASE with 1–6 random edits: replace, delete, add, duplicate, empty."""
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 6))):
        paths = [p for p, _ in _paths(doc)]
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "duplicate",
                                   "empty", "scale", "scale_siblings"]))
        if not paths:
            op = "add"
        if op == "add":
            containers = [()] + [p for p, v in _paths(doc) if isinstance(v, dict | list)]
            parent = _get(doc, draw(st.sampled_from(containers)))
            value = draw(values)
            if isinstance(parent, list):
                parent.append(value)
            else:
                parent[draw(keys)] = value
            continue
        path = draw(st.sampled_from(paths))
        parent, key = _get(doc, path[:-1]), path[-1]
        if op == "replace":
            parent[key] = draw(values)
        elif op == "delete":
            del parent[key]
        elif op == "duplicate":
            if isinstance(parent, list):
                parent.append(copy.deepcopy(parent[key]))
            else:
                parent[str(key) + draw(st.sampled_from(["", "_", "2"]))] = copy.deepcopy(
                    parent[key])
        elif op == "empty":
            parent[key] = draw(st.sampled_from([[], {}, ""]))
        elif op == "scale":
            # keep the type of a number but push it to an extreme: tests overflow in sums
            v = parent[key]
            if isinstance(v, int | float) and not isinstance(v, bool):
                parent[key] = draw(st.sampled_from([1e308, 1.7976931348623157e308, 5e-324,
                                                    1e-320, 2**63 - 1, 10**13, 127, 1e16]))
        elif op == "scale_siblings":
            # every number beside this one (and the same key in sibling tables) to one extreme:
            # their sum overflows although each value is valid
            big = draw(st.sampled_from([1e308, 1.7976931348623157e308, 5e-324]))
            grand = _get(doc, path[:-2]) if len(path) >= 2 else None
            tables = [parent]
            if isinstance(grand, list) and isinstance(parent, dict):
                tables = [t for t in grand if isinstance(t, dict)]
            for table in tables:
                for k, v in (table.items() if isinstance(table, dict) else enumerate(table)):
                    if isinstance(v, int | float) and not isinstance(v, bool) and (
                            table is parent or k == key):
                        table[k] = big
    return doc


def to_toml(doc: dict) -> str | None:
    """TOML text of ``doc``; None when TOML cannot express it (e.g. a mixed-type array)."""
    try:
        return tomli_w.dumps(doc)
    except (TypeError, ValueError):
        return None


BASE_TOML = tomli_w.dumps(BASE)
FRAGMENTS = [
    "[scenario]", 'name = "x"', "seed = 1", "trials = 10", "[[states]]", 'id = "A"',
    'id = "B"', "capability = 1.0", "commitment = 0.5", "capability = nan", "commitment = inf",
    "capability = -inf", "capability = 1e400", "seed = 99999999999999999999999",
    "[[alliances]]", 'members = ["A", "B"]', "[[aggressors]]", 'state = "B"',
    "targets = { A = 1.0 }", "attack_mix = { conv = 1.0 }", "[attack_types.conv]",
    "[attack_types]", "severity = 2", "[exposure]", '"A.B" = 0.5', "A.B = 1", 'from = "jaccard"',
    "[scenario.deep.er]", "x = [[1], [2.0], []]", "x = {}", "[[states.x]]", "= 1", "[", "]]",
    'name = """', "name = '''a'''", "id = 1979-05-27T07:32:00Z", 'id = "\\u00e9"', "x = \"\\q\"",
    "trials = true", "trials = 0x10", "trials = 1_000", "seed = -1", "# comment", "",
    "exposure = 1", "states = []", "states = 1", "aggressors = {}",
]
raw_texts = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(list("[]{}=\"'.,#\n \t0123456789abcinfe+-_xAB")),
            max_size=200),
    st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("\n".join),
    # the valid base with a few lines dropped, repeated or appended
    st.tuples(st.lists(st.integers(0, BASE_TOML.count("\n")), max_size=4),
              st.lists(st.sampled_from(FRAGMENTS), max_size=5)).map(
        lambda t: "\n".join(
            [line for i, line in enumerate(BASE_TOML.splitlines()) if i not in t[0][::2]]
            + [BASE_TOML.splitlines()[i % len(BASE_TOML.splitlines())] for i in t[0][1::2]]
            + t[1])),
)


@st.composite
def nested_texts(draw):
    """Deeply nested arrays / inline tables / dotted keys, at a random place in the base file."""
    depth = draw(st.integers(1, 3000))
    kind = draw(st.sampled_from(["array", "inline", "dotted", "header", "mixed"]))
    leaf = draw(st.sampled_from(["1", "nan", '"A"', "{}", "[]", "true"]))
    if kind == "array":
        value = "[" * depth + leaf + "]" * depth
    elif kind == "inline":
        value = "{a = " * depth + leaf + "}" * depth
    elif kind == "mixed":
        value = "[{a = " * depth + leaf + "}]" * depth
    else:
        value = None
    key = draw(st.sampled_from(["capability", "members", "targets", "name", "bogus", "default",
                                '"A.B"', "id"]))
    section = draw(st.sampled_from(["[scenario]", "[[states]]", "[exposure]", "[[aggressors]]",
                                    "[attack_types.conv]", ""]))
    if kind == "dotted":
        line = ".".join(["k"] * min(depth, 500)) + " = " + leaf
    elif kind == "header":
        line = "[" + ".".join(["k"] * min(depth, 500)) + "]\nx = " + leaf
    else:
        line = f"{key} = {value}"
    if draw(st.booleans()):
        return BASE_TOML + "\n" + section + "\n" + line + "\n"
    return section + "\n" + line + "\n"


def nested_value(depth: int, kind: str):
    value = 1.0
    for _ in range(depth):
        value = [value] if kind == "list" else {"A": value}
    return value


# ---------------------------------------------------------------------------------------------
# Fast tier
# ---------------------------------------------------------------------------------------------


def test_base_is_valid():
    check_scenario(scenario_from_dict(copy.deepcopy(BASE)))
    check_scenario(load_scenario(write("base.toml", BASE_TOML)))


def _structured(doc: dict) -> None:
    assert_dict_or_config_error(copy.deepcopy(doc))
    text = to_toml(doc)
    if text is not None:
        assert_loads_or_config_error(write("structured.toml", text))


def _overflow(doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    doc["aggressors"][0]["targets"] = {"A": 1e308, "B": 1e308, "C": 1e308}
    return doc


def _overflow_capability(doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    for entry in doc["states"]:
        entry["capability"] = 1.7976931348623157e308
    return doc


@FAST
@given(mutated_scenarios())
@example(_overflow(BASE))  # regression: target weights summing to inf gave NaN cum. weights
@example(_overflow_capability(BASE))  # regression: capabilities summing to inf
def test_structured_scenarios(doc):
    _structured(doc)


@FAST
@given(raw_texts)
@example("")
@example("\x00")
@example("[scenario]\nname = nan")
def test_raw_text_scenarios(text):
    assert_loads_or_config_error(write("raw.toml", text))


@FAST
@given(st.binary(max_size=200))
@example(b"\xff\xfe[scenario]")
def test_raw_bytes_scenarios(data):
    assert_loads_or_config_error(write("bytes.toml", data))


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(nested_texts())
@example("x = " + "[" * 3000 + "1" + "]" * 3000)  # regression: tomllib's RecursionError
@example("[scenario]\nname = " + "{a = " * 3000 + "1" + "}" * 3000)
def test_deeply_nested_files(text):
    assert_loads_or_config_error(write("nested.toml", text))


@pytest.mark.parametrize("kind", ["list", "dict"])
@pytest.mark.parametrize("where", ["capability", "members", "exposure", "targets", "extra"])
def test_deeply_nested_dicts(kind, where):
    for depth in (1, 10, 200, 5000):
        doc = copy.deepcopy(BASE)
        deep = nested_value(depth, kind)
        if where == "capability":
            doc["states"][0]["capability"] = deep
        elif where == "members":
            doc["alliances"][0]["members"] = deep
        elif where == "exposure":
            doc["exposure"]["A"] = {"B": deep}
        elif where == "targets":
            doc["aggressors"][0]["targets"] = deep
        else:
            doc["scenario"]["bogus"] = deep
        assert_dict_or_config_error(doc)


@FAST
@given(values)
def test_any_document_shape(doc):
    assert_dict_or_config_error(doc)
    if isinstance(doc, dict):
        text = to_toml(doc)
        if text is not None:
            assert_loads_or_config_error(write("shape.toml", text))


def test_validate_cli_exit_codes():
    runner = CliRunner()
    for name, text in [("ok.toml", BASE_TOML), ("bad.toml", "[scenario\n"),
                       ("nan.toml", BASE_TOML.replace("capability = 0.2", "capability = nan"))]:
        result = runner.invoke(main, ["validate", str(write(name, text))])
        assert result.exit_code in (0, 2), result.output
        assert "Traceback" not in result.output


@FAST
@given(st.one_of(raw_texts, mutated_scenarios().map(lambda d: to_toml(d) or "")))
def test_validate_cli_fuzz(text):
    result = CliRunner().invoke(main, ["validate", str(write("cli.toml", text))])
    assert result.exit_code in (0, 2), (result.output, result.exception)
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------
# `crisis run` options
# ---------------------------------------------------------------------------------------------

def _big_int(text: str) -> bool:
    try:
        return int(text) > 2000
    except ValueError:
        return False


junk = st.one_of(
    st.sampled_from(["", " ", "abc", "1.5", "1e3", "-1", "0", "-0", "0x10", "nan", "inf", "--",
                     "٣", "1_000", "+5", " 7 ", "2**8", "99999999999999999999999999"]),
    st.text(max_size=10),
)
trials_opt = st.one_of(st.integers(1, 2000).map(str), junk.filter(lambda s: not _big_int(s)))
seed_opt = st.one_of(st.integers(-5, 2**64).map(str), st.sampled_from([str(2**63 - 1)]), junk)
threads_opt = st.one_of(st.integers(-2, 64).map(str), st.sampled_from(["1000", str(10**9)]), junk)
block_opt = st.one_of(st.integers(-2, 5000).map(str),
                      st.sampled_from([str(2**31), str(2**62), str(2**63 - 1), str(2**63),
                                       str(10**30)]),
                      junk)
save_opt = st.one_of(st.integers(-2, 5000).map(str),
                     st.sampled_from([str(2**31), str(2**63 - 1), str(2**64), str(10**30)]),
                     junk)
shard_opt = st.one_of(
    st.tuples(st.integers(-2, 10), st.integers(-1, 10)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.sampled_from(["0/1", "1/2", "0/2000", "1999/2000", "0/3000", "2999/3000", f"0/{10**18}",
                     f"{10**20}/{10**21}", " 0 / 2 ", "0/ 2", "/", "1", "a/b", "0/0", "٠/٢"]),
    junk,
)


@st.composite
def run_arguments(draw):
    args = []
    for flag, strategy in [("--trials", trials_opt), ("--seed", seed_opt),
                           ("--threads", threads_opt), ("--block-size", block_opt),
                           ("--save-trials", save_opt), ("--shard", shard_opt)]:
        if draw(st.booleans()):
            args += [flag, draw(strategy)]
    if "--trials" not in args or _big_int(args[args.index("--trials") + 1]):
        # keep valid runs tiny whatever else was drawn
        args = ["--trials", draw(st.integers(1, 2000).map(str))] + args
    return args


def _run_cli(args: list[str]) -> None:
    out = tempfile.mkdtemp(prefix="run-", dir=_TMP)
    full = ["run", str(NATO), *args, "--quiet", "--out", out, "--force"]
    start = time.perf_counter()
    result = CliRunner().invoke(main, full)
    assert result.exit_code in (0, 2), (full, result.output, result.exception)
    assert "Traceback" not in result.output, (full, result.output)
    assert time.perf_counter() - start < HANG_S * 3, full


@CLI_FAST
@given(run_arguments())
@example(["--trials", "5", "--block-size", "1"])
@example(["--trials", "5", "--shard", "0/1"])
@example(["--trials", "1", "--save-trials", str(2**64)])
@example(["--trials", "1", "--shard", f"0/{2**64}"])
def test_run_cli_fuzz(args):
    _run_cli(args)


def test_run_block_size_beyond_int64():  # was exit 1 (OverflowError); now a clear exit 2
    _run_cli(["--trials", "1", "--block-size", str(2**63)])


# ---------------------------------------------------------------------------------------------
# Slow tier: the same properties, tens of thousands of cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@slow(SLOW_STRUCTURED)
@given(mutated_scenarios())
def test_slow_structured_scenarios(doc):
    _structured(doc)


@pytest.mark.slow
@slow(SLOW_RAW)
@given(raw_texts)
def test_slow_raw_text_scenarios(text):
    assert_loads_or_config_error(write("slow-raw.toml", text))


@pytest.mark.slow
@slow(SLOW_NESTED)
@given(st.one_of(nested_texts(), values))
def test_slow_nested(case):
    if isinstance(case, str):
        assert_loads_or_config_error(write("slow-nested.toml", case))
    else:
        assert_dict_or_config_error(case)


@pytest.mark.slow
@slow(SLOW_CLI)
@given(run_arguments())
def test_slow_run_cli_fuzz(args):
    _run_cli(args)
