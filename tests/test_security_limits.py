"""Resources stay within the documented limits, and bad input is refused with a clear message
(issue 11, items 9, 11 and 13): every large array is in the memory estimate, which is checked
before anything is allocated; `crisis validate` stays fast at 5,000 states × 20,000 alliances;
attack types are bounded; figures and reports stay small however many rows a run has; the
importer refuses impossible CINC values, state abbreviations and years; the delay-overflow
message is readable and gives the right advice."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import tomli_w
from click.testing import CliRunner

from engine.cli.importing import import_group
from engine.cli.main import main
from engine.errors import UserError
from engine.model.compile import compile_scenario, shared_alliance_matrix
from engine.model.config import scenario_from_dict
from engine.model.limits import (
    MAX_ATTACK_TYPES,
    check_request,
    estimated_bytes,
    memory_parts,
    scenario_shape,
    scratch_bytes_per_thread,
)

DATA = Path(__file__).parent.parent.parent / "shared" / "data"
ALLIANCES = DATA / "atop-alliance-level.csv"
MEMBERS = DATA / "atop-member-level.csv"
CINC = DATA / "cinc-polity.csv"
needs_data = pytest.mark.skipif(
    not all(p.is_file() for p in (ALLIANCES, MEMBERS, CINC)),
    reason=f"public datasets not found in {DATA} (ATOP, cinc-polity CSVs)")


def invoke(*args, env=None):
    return CliRunner(env=env).invoke(main, [str(a) for a in args])


def world(n_states, alliances, targets, attack_types=10, aggressor=0, name="w", **extra):
    """A scenario dict: states S0…, alliances given as lists of state numbers (or dicts)."""
    types = {f"t{k}": {} for k in range(attack_types)}
    return {
        "scenario": {"name": name},
        "states": [{"id": f"S{i}", "capability": 1.0, "commitment": 0.5}
                   for i in range(n_states)],
        "alliances": [al if isinstance(al, dict) else
                      {"id": f"A{a}", "members": [f"S{m}" for m in al]}
                      for a, al in enumerate(alliances)],
        "aggressors": [{"state": f"S{aggressor}", "targets": {f"S{t}": 1.0 for t in targets},
                        "attack_mix": {k: 1.0 for k in types}}],
        "attack_types": types,
        **extra,
    }


def write(path: Path, data: dict) -> Path:
    path.write_text(tomli_w.dumps(data))
    return path


# ---- item 9: the memory estimate counts every large array ---------------------------------------

def test_the_issues_scenario_is_refused_before_allocating():
    # 5,000 states, one 4,999-member alliance, 10 attack types: the consultation tables alone
    # hold 49,990 consultations × 4,999 entries (≈ 11 GiB); the old estimate said 3.1 GiB and
    # the run died at 12 GB with exit 1
    scenario = scenario_from_dict(world(5000, [range(1, 5000)], range(1, 5000)))
    parts = memory_parts(scenario, threads=2, save_trials=0)
    assert parts["consultation tables"] > 11 * 2**30
    assert estimated_bytes(scenario, 2, 0) > 12 * 2**30
    with pytest.raises(UserError) as err:
        check_request(scenario, trials_in_process=1000, total_trials=1000, threads=2,
                      save_trials=0)
    message = str(err.value)
    assert "CRISIS_MEMORY_LIMIT_GB" in message and "8.0 GiB" in message
    assert "consultation tables" in message


def test_shape_and_estimate_match_the_kernels_arrays():
    from kernels.prepare import consultation_tables
    from kernels.trial import BATCH, _allocate_scratch, batch_size

    rng = random.Random(3)
    alliances = [sorted(rng.sample(range(60), rng.randint(2, 25))) for _ in range(12)]
    alliances.append({"id": "directed", "members": ["S1", "S2", "S3", "S0"],
                      "protected": ["S2", "S2"]})
    alliances.append({"id": "talk", "members": ["S4", "S5"], "obligation": "consultation"})
    # collective security covers members against members; an alliance of only the target and
    # the aggressor covers nobody (design §8)
    alliances.append({"id": "league", "members": ["S7", "S1", "S9"],
                      "obligation": "collective_security"})
    alliances.append({"id": "pair", "members": ["S7", "S2"], "obligation": "collective_security"})
    data = world(60, alliances, range(1, 40), attack_types=3)
    data["aggressors"].append({"state": "S7", "targets": {"S1": 1.0, "S2": 2.0},
                               "attack_mix": {"t1": 1.0}})
    scenario = scenario_from_dict(data)
    c = compile_scenario(scenario)
    consultations, entries = consultation_tables(
        c.capability_units, c.commitment, c.free_riding, c.member_ptr, c.member_idx, c.rule,
        c.quota, c.veto, c.bindingness, c.entry_cover_ptr, c.entry_cover_idx,
        c.shares_alliance, c.exposure, c.aggressor_state, c.cell_aggressor, c.cell_target,
        c.cell_attack_type, c.cell_entry, c.severity, c.ambiguity, c.conflict_penalty,
        c.threat_weight)
    shape = scenario_shape(scenario)
    assert shape.cells == c.n_cells
    assert shape.consultations == len(consultations.alliance)
    assert shape.entries == len(entries.state)
    assert shape.most_cover == consultations.max_cover
    assert consultations.max_members <= shape.largest_consultation <= \
        consultations.max_members + 1
    # the estimate of the tables is at least what they hold
    held = sum(a.nbytes for a in (*consultations[:6], *entries))
    assert memory_parts(scenario, 1, 0)["consultation tables"] >= held
    # the scratch estimate is what the kernel allocates per thread (within its padding)
    rounds = int(c.max_rounds.max())
    scratch = _allocate_scratch(batch_size(BATCH, shape.largest_consultation), c.n_cells,
                                c.n_states, shape.largest_consultation, shape.most_cover, rounds)
    allocated = sum(a.nbytes for a in scratch)
    assert allocated <= scratch_bytes_per_thread(shape, max_rounds=rounds) <= 1.05 * allocated


def test_memory_limit_is_checked_by_the_cli_with_the_new_parts(tmp_path):
    # one 299-member alliance: the consultation tables and the kernel's scratch, which the old
    # estimate left out, take the run over a limit just below the estimate
    scenario_data = world(300, [range(1, 300)], range(1, 300))
    config = write(tmp_path / "big.toml", scenario_data)
    need = estimated_bytes(scenario_from_dict(scenario_data), 2, 0)
    limit = f"{0.9 * need / 2**30:.6f}"
    refused = invoke("run", config, "--trials", 2000, "--threads", 2, "--out", tmp_path / "a",
                     env={"CRISIS_MEMORY_LIMIT_GB": limit})
    assert refused.exit_code == 2, refused.output
    assert "CRISIS_MEMORY_LIMIT_GB" in refused.output and "GiB" in refused.output
    assert not (tmp_path / "a").exists()
    bad = invoke("run", config, "--trials", 2000, "--out", tmp_path / "b",
                 env={"CRISIS_MEMORY_LIMIT_GB": "lots"})
    assert bad.exit_code == 2 and "CRISIS_MEMORY_LIMIT_GB='lots'" in bad.output


def test_shares_alliance_is_the_membership_product():
    rng = np.random.default_rng(7)
    for n_states, n_alliances in ((1, 0), (7, 3), (300, 40), (300, 2)):
        sizes = rng.integers(1, n_states + 1, n_alliances)
        lists = [np.sort(rng.choice(n_states, size, replace=False)) for size in sizes]
        ptr = np.concatenate([[0], np.cumsum([len(m) for m in lists])]).astype(np.int64)
        idx = np.concatenate(lists + [np.zeros(0)]).astype(np.int64)
        m = np.zeros((n_states, n_alliances), dtype=np.int64)
        for a, members in enumerate(lists):
            m[members, a] = 1
        expected = ((m @ m.T) > 0).astype(np.uint8)
        got = shared_alliance_matrix(n_states, ptr, idx)
        assert got.dtype == np.uint8 and got.shape == (n_states, n_states)
        assert np.array_equal(got, expected)


def test_validate_is_fast_at_the_limits(tmp_path):
    # 5,000 states × 20,000 alliances: the integer M @ M.T took 477 s
    rng = random.Random(11)
    alliances = [rng.sample(range(1, 5000), rng.randint(2, 10)) for _ in range(20_000)]
    scenario = scenario_from_dict(world(5000, alliances, range(1, 11)))
    start = time.perf_counter()
    compiled = compile_scenario(scenario)
    elapsed = time.perf_counter() - start
    assert compiled.n_alliances == 20_000
    assert elapsed < 15, f"compiling took {elapsed:.1f} s"  # ≈ 1 s here; 2-core CI noise


# ---- item 9: attack types are bounded ---------------------------------------------------------

def test_attack_types_are_bounded(tmp_path):
    ok = write(tmp_path / "ok.toml", world(3, [[0, 1]], [1], attack_types=MAX_ATTACK_TYPES,
                                           aggressor=2))
    assert invoke("validate", ok).exit_code == 0
    many = write(tmp_path / "many.toml", world(3, [[0, 1]], [1],
                                               attack_types=MAX_ATTACK_TYPES + 1, aggressor=2))
    result = invoke("validate", many)
    assert result.exit_code == 2
    assert f"{MAX_ATTACK_TYPES + 1:,} attack types" in result.output
    assert f"({MAX_ATTACK_TYPES:,}" in result.output


# ---- item 9: figures and reports are bounded ---------------------------------------------------

@pytest.fixture(scope="module")
def wide_run(tmp_path_factory) -> Path:
    """A run with 60 targets, 40 alliances and 12 attack types, all attacked and invoked."""
    from engine.core.simulate import set_threads
    from engine.runs.runner import run_to_folder

    rng = random.Random(5)
    data = world(80, [rng.sample(range(1, 80), 3) for _ in range(40)], range(1, 61),
                 attack_types=12)
    data["states"][0]["capability"] = 50.0
    for kind in data["attack_types"].values():
        kind["attribution_days"] = 5.0
    out = tmp_path_factory.mktemp("wide") / "run"
    try:
        run_to_folder(scenario_from_dict(data), trials=50_000, seed=2, out_dir=out)
    finally:
        set_threads(None)
    return out


def test_figures_show_the_largest_rows_and_pool_the_rest(wide_run, tmp_path):
    from engine.present.plots import MAX_BARS, MAX_CURVES, plot_run

    plot_run(wide_run, tmp_path)
    svg = {name: (tmp_path / f"{name}.svg").read_text()
           for name in ("deterrence_by_target", "delay_distribution", "breakdown_causes")}
    assert "other (31 targets)" in svg["deterrence_by_target"]
    for name in ("deterrence_by_target", "breakdown_causes"):
        targets = set(re.findall(r">(S\d+)</text>", svg[name]))
        assert len(targets) == MAX_BARS - 1, name  # and one "other" bar
    assert "other (31 targets)" in svg["breakdown_causes"]
    legend = re.findall(r"\(n=[\d,]+, p50", svg["delay_distribution"])
    assert len(legend) <= 2 * MAX_CURVES
    assert "other (33 alliances)" in svg["delay_distribution"]
    assert "other (5 attack types)" in svg["delay_distribution"]


def test_report_tables_are_bounded(wide_run, tmp_path):
    from engine.present.report import MAX_TABLE_ROWS, write_report

    page = write_report(wide_run, tmp_path / "r.html").read_text()
    assert "10 more rows with fewer trials" in page and "summary.parquet" in page
    by_target = page.split("<h3>By target</h3>")[1].split("</table>")[0]
    assert by_target.count("<tr>") == MAX_TABLE_ROWS + 1 + 1  # header, rows, "other"


# ---- item 11: the importer refuses impossible values ------------------------------------------

def _cinc_with(tmp_path: Path, column: str, value: str, state: str = "BEL",
               year: str = "1914") -> tuple[Path, int]:
    """cinc-polity.csv with one cell replaced; the CSV row number (header = row 1)."""
    cinc = pl.read_csv(CINC, infer_schema_length=0)
    hit = (pl.col("stateabb") == state) & (pl.col("year") == year)
    row = int(cinc.select(hit.arg_max()).item()) + 2
    cinc = cinc.with_columns(pl.when(hit).then(pl.lit(value)).otherwise(pl.col(column))
                             .alias(column))
    path = tmp_path / "cinc.csv"
    cinc.write_csv(path)
    return path, row


def _import(tmp_path: Path, capabilities: Path):
    return CliRunner().invoke(import_group, [
        "atop", "--year", "1914", "--alliances", str(ALLIANCES), "--members", str(MEMBERS),
        "--capabilities", str(capabilities), "--aggressor", "GMY",
        "--out", str(tmp_path / "w.toml")])


@needs_data
@pytest.mark.parametrize("value", ["-0.002", "inf", "NaN", "-inf", "1.5"])
def test_impossible_cinc_is_an_error_naming_file_row_and_column(tmp_path, value):
    path, row = _cinc_with(tmp_path, "cinc", value)
    result = _import(tmp_path, path)
    assert result.exit_code == 2, result.output
    assert f"{path}: row {row}, column 'cinc'" in result.output and repr(value) in result.output
    assert not (tmp_path / "w.toml").exists()


@needs_data
@pytest.mark.parametrize("value", ["B EL", "BEL\x1b[2J", "BÉL", "x" * 65])
def test_odd_state_abbreviation_is_an_error(tmp_path, value):
    path, row = _cinc_with(tmp_path, "stateabb", value)
    result = _import(tmp_path, path)
    assert result.exit_code == 2, result.output
    assert f"row {row}, column 'stateabb'" in result.output and "state id" in result.output
    assert "\x1b" not in result.output


@needs_data
@pytest.mark.parametrize("value", ["1e300", "9007199254740993", "inf"])
def test_absurd_year_is_an_error(tmp_path, value):
    path, row = _cinc_with(tmp_path, "year", value, year="1900")
    result = _import(tmp_path, path)
    assert result.exit_code == 2, result.output
    assert f"{path}: row {row}, column 'year'" in result.output


@needs_data
def test_zero_and_missing_cinc_still_get_the_floor(tmp_path):
    path, _ = _cinc_with(tmp_path, "cinc", "0")
    assert _import(tmp_path, path).exit_code == 0


# ---- item 13: the delay-overflow message ---------------------------------------------------------

def test_delay_overflow_of_one_trial_blames_the_scenario():
    slow = _slow_world(1e300)
    with pytest.raises(UserError) as err:
        check_request(slow, trials_in_process=1, total_trials=1, threads=1, save_trials=0)
    message = str(err.value)
    assert not re.search(r"\d{16}", message.replace(",", "")), message
    assert "attack_types.slow.attribution_days = 1e+300" in message
    assert "not the number of trials" in message and "fewer trials" not in message
    assert "overflow" in message


def test_delay_overflow_of_many_trials_says_how_many_fit():
    slow = _slow_world(1e9)
    with pytest.raises(UserError) as err:
        check_request(slow, trials_in_process=10**6, total_trials=10**6, threads=1,
                      save_trials=0)
    message = str(err.value)
    most = int(re.search(r"at most ([\d,]+) trials", message).group(1).replace(",", ""))
    check_request(slow, trials_in_process=most, total_trials=most, threads=1, save_trials=0)
    with pytest.raises(UserError):
        check_request(slow, trials_in_process=most + 1, total_trials=most + 1, threads=1,
                      save_trials=0)
    assert "attribution_days" in message and not re.search(r"\d{16}", message.replace(",", ""))


def _slow_world(attribution_days: float):
    data = world(3, [[0, 1]], [1], attack_types=0, aggressor=2)
    data["attack_types"] = {"slow": {"attribution_days": attribution_days}}
    data["aggressors"][0]["attack_mix"] = {"slow": 1.0}
    return scenario_from_dict(data)
