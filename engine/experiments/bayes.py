"""``crisis calibrate --method mcmc``: joint Bayesian calibration of several parameters to several
targets, over one or several scenarios (issue 14, item 1).

Parameters (``--fit P1,P2,…``): ``commitment_scale``, ``resolve_scale``,
``bindingness_scale[:<obligation>]``, ``misperception`` or any parameter path
(``states.EST.commitment``), applied by :func:`.calibrate.apply_values` to every scenario.

Targets (``--target``, repeatable), each on scenario ``N`` (1-based, ``N@…``; without a prefix,
on every scenario, one likelihood term each):

* ``MEASURE=VALUE:SE`` — any overall summary rate (``honor_rate``, ``deterrence_success_rate``,
  …) or ``deterrence_relative_risk``; a normal likelihood ``N(VALUE | m(θ), SE² + s_mc²)``
  where ``s_mc`` is the Monte Carlo error of the simulated rate (0 for the relative risk,
  which is exact);
* ``honor_rate=observed[:FROM-TO][:OBLIGATION]`` — the honored share of the coded commitments
  of ``--observations`` (Berkemeier & Fuhrmann 2018), filtered by war start years and
  obligation; a binomial likelihood ``k log m(θ) + (n − k) log(1 − m(θ))``.

``deterrence_relative_risk`` of a scenario is the engine's counterpart of the backtest's relative
risk (:mod:`.deterrence_evidence`) on the scenario's own crises: the mean of
``1 − P(deterred)`` over its (aggressor, target) entries whose target is covered by an alliance,
over the same mean for uncovered targets, each entry weighted by its chance (aggressor weight ×
target weight); it is undefined (an error) when either group is empty.

Every evaluation runs the same seed and trials (common random numbers), so the likelihood is a
deterministic function of θ.

Priors (weakly informative; printed and written to ``calibration.json``):

* scales (``*_scale``): log-normal with median 1 and σ = 0.5 on the log scale (95% of the
  prior mass between ×0.38 and ×2.7 of the file's values);
* ``misperception`` and a path whose value is positive: log-normal with median the file's value
  (1 when it is 0) and σ = 0.5;
* a path to a knob in [0, 1] (commitment, stability, bindingness, …): Beta(2, 2).

``--prior NAME=lognormal:MEDIAN:SIGMA|beta:A:B|uniform:LO:HI`` replaces one.

Sampler: emcee's ensemble sampler (Foreman-Mackey et al. 2013) with differential-evolution moves
(80% DE, 20% DE snooker), ``walkers`` walkers (default max(8, 4 × parameters)) started from
prior draws, for ``steps`` steps, the first ``burn`` discarded; its random state is seeded, so a
calibration is reproducible.  Diagnostics with ArviZ: split R-hat and bulk
and tail effective sample sizes per parameter (walkers as chains), and emcee's acceptance
fraction and integrated autocorrelation time.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..core.simulate import deterrence_tables
from ..core.tables import covered_cells
from ..errors import UserError
from ..model.compile import CompiledScenario, compile_scenario
from ..model.config import Scenario
from ..model.parameters import UNIT_KNOBS, apply_values
from ..model.paths import LISTS, set_value
from ..runs.io import write_bytes, write_json, write_parquet
from .calibrate import Observed, measure_of, observed_honor_rate

RELATIVE_RISK = "deterrence_relative_risk"
DEFAULT_SIGMA = 0.5
MIN_DRAWS = 1000
CLIP = 1e-9


# ---- priors --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prior:
    kind: str  # lognormal | beta | uniform
    a: float  # lognormal: median; beta: alpha; uniform: low
    b: float  # lognormal: sigma; beta: beta; uniform: high

    def logpdf(self, x: float) -> float:
        if self.kind == "lognormal":
            if x <= 0:
                return -math.inf
            z = (math.log(x) - math.log(self.a)) / self.b
            return -0.5 * z * z - math.log(x * self.b * math.sqrt(2 * math.pi))
        if self.kind == "beta":
            if not 0 < x < 1:
                return -math.inf
            return ((self.a - 1) * math.log(x) + (self.b - 1) * math.log(1 - x)
                    - (math.lgamma(self.a) + math.lgamma(self.b) - math.lgamma(self.a + self.b)))
        if not self.a <= x <= self.b:
            return -math.inf
        return -math.log(self.b - self.a)

    def start(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` starting points drawn from the prior itself (over-dispersed starts, as R-hat
        assumes)."""
        if self.kind == "lognormal":
            return self.a * np.exp(self.b * rng.standard_normal(n))
        if self.kind == "beta":
            return np.clip(rng.beta(self.a, self.b, n), 1e-6, 1 - 1e-6)
        return rng.uniform(self.a, self.b, n)

    def describe(self) -> str:
        if self.kind == "lognormal":
            return f"log-normal(median {self.a:g}, sigma {self.b:g})"
        if self.kind == "beta":
            return f"Beta({self.a:g}, {self.b:g})"
        return f"uniform({self.a:g}, {self.b:g})"


def parse_prior(text: str) -> tuple[str, Prior]:
    """``NAME=lognormal:MEDIAN:SIGMA|beta:A:B|uniform:LO:HI``."""
    name, eq, spec = text.partition("=")
    kind, *numbers = spec.split(":")
    try:
        a, b = (float(x) for x in numbers)
    except ValueError:
        raise UserError(f"--prior {text!r}: expected NAME=KIND:A:B (lognormal:MEDIAN:SIGMA, "
                        f"beta:A:B or uniform:LO:HI)") from None
    if not eq or kind not in ("lognormal", "beta", "uniform"):
        raise UserError(f"--prior {text!r}: KIND must be lognormal, beta or uniform")
    if kind in ("lognormal", "beta") and not (a > 0 and b > 0):
        raise UserError(f"--prior {text!r}: {kind} needs two positive numbers")
    if kind == "uniform" and not a < b:
        raise UserError(f"--prior {text!r}: uniform needs LO < HI")
    return name, Prior(kind, a, b)


def default_prior(name: str, scenario: Scenario) -> Prior:
    """The weakly informative default of the module docstring."""
    if name.partition(":")[0].endswith("_scale"):
        return Prior("lognormal", 1.0, DEFAULT_SIGMA)
    if name == "misperception":
        return Prior("lognormal", float(scenario.scenario.misperception), DEFAULT_SIGMA)
    key = name.rsplit(".", 1)[-1]
    if key in UNIT_KNOBS:
        return Prior("beta", 2.0, 2.0)
    value = _path_value(scenario, name)
    return Prior("lognormal", value if value > 0 else 1.0, DEFAULT_SIGMA)


def _path_value(scenario: Scenario, path: str) -> float:
    data = scenario.to_toml_dict()
    set_value(copy.deepcopy(data), path, 0.0, option="--fit")  # names nothing: its own message
    head, *rest = path.split(".")
    node = data.get(head)
    if isinstance(node, list) and rest:
        node = next((e for e in node if e.get(LISTS.get(head, "id")) == rest[0]), None)
        rest = rest[1:]
    for part in rest:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise UserError(f"--fit {path}: not a numeric parameter of the scenario")
    return float(node)


# ---- targets -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    measure: str
    scenario: int  # index into the scenarios
    value: float
    se: float | None = None
    observed: Observed | None = None
    text: str = ""

    def describe(self) -> str:
        if self.observed is not None:
            return (f"{self.measure} = {self.observed.rate:.4f} (observed {self.observed.n} "
                    f"commitments: {self.observed.source})")
        return f"{self.measure} = {self.value:g} ± {self.se:g}"


def parse_target(text: str, n_scenarios: int, observations: Path | None,
                 coding: str = "BF") -> list[Target]:
    """One ``--target`` (module docstring) → one target per scenario it applies to."""
    where, at, rest = text.partition("@")
    if not at:
        where, rest = "", text
    if where:
        try:
            index = int(where) - 1
        except ValueError:
            raise UserError(f"--target {text!r}: N@ must be a scenario number") from None
        if not 0 <= index < n_scenarios:
            raise UserError(f"--target {text!r}: scenario {where} of {n_scenarios}")
        indices = [index]
    else:
        indices = list(range(n_scenarios))
    measure, eq, value = rest.partition("=")
    if not eq or not measure:
        raise UserError(f"--target {text!r}: expected [N@]MEASURE=VALUE:SE or "
                        f"honor_rate=observed[:FROM-TO][:OBLIGATION]")
    head, *parts = value.split(":")
    if head == "observed":
        if measure != "honor_rate":
            raise UserError(f"--target {text!r}: observations give honor_rate only")
        if observations is None:
            raise UserError(f"--target {text!r}: needs --observations FILE")
        era, obligation = None, None
        for part in parts:
            if "-" in part:
                lo, _, hi = part.partition("-")
                try:
                    era = (int(lo), int(hi))
                except ValueError:
                    raise UserError(f"--target {text!r}: {part!r} is not FROM-TO years") from None
            elif part:
                obligation = part
        obs = observed_honor_rate(observations, era=era, obligation=obligation, coding=coding)
        return [Target(measure, i, obs.rate, None, obs, text) for i in indices]
    if len(parts) != 1:
        raise UserError(f"--target {text!r}: give VALUE:SE (the target's standard error; "
                        f"a Bayesian calibration needs one)")
    try:
        v, se = float(head), float(parts[0])
    except ValueError:
        raise UserError(f"--target {text!r}: VALUE and SE must be numbers") from None
    if not (math.isfinite(v) and math.isfinite(se) and se > 0):
        raise UserError(f"--target {text!r}: SE must be a positive number")
    if measure.endswith("_rate") and not 0 <= v <= 1:
        raise UserError(f"--target {text!r}: a rate lies in [0, 1]")
    if measure == RELATIVE_RISK and v <= 0:
        raise UserError(f"--target {text!r}: a relative risk is positive")
    return [Target(measure, i, v, se, None, text) for i in indices]


def relative_risk(compiled: CompiledScenario, seed: int) -> float:
    """The scenario's ``deterrence_relative_risk`` (module docstring)."""
    tables = deterrence_tables(compiled, seed)
    c = compiled
    # per cell: the (aggressor, target) entry's chance × the attack type's share of the mix
    agg_w = np.diff(np.concatenate([[0.0], c.aggressor_cum_weight]))
    entry_w = np.empty(len(c.target_state))
    mix_share = np.zeros((len(c.aggressor_state), len(c.attack_type_ids)))
    for g in range(len(c.aggressor_state)):
        lo, hi = c.target_ptr[g], c.target_ptr[g + 1]
        entry_w[lo:hi] = np.diff(np.concatenate([[0.0], c.target_cum_weight[lo:hi]])) * agg_w[g]
        lo, hi = c.mix_ptr[g], c.mix_ptr[g + 1]
        mix_share[g, c.mix_type[lo:hi]] = np.diff(np.concatenate([[0.0],
                                                                  c.mix_cum_weight[lo:hi]]))
    weight = entry_w[c.cell_entry] * mix_share[c.cell_aggressor, c.cell_attack_type]
    covered = covered_cells(c)
    attack = 1.0 - tables.p_deterred
    w1, w0 = weight[covered].sum(), weight[~covered].sum()
    if w1 <= 0 or w0 <= 0:
        raise UserError(f"{RELATIVE_RISK}: undefined in this scenario (it needs crises against "
                        f"covered and against uncovered targets)")
    r0 = float((weight[~covered] * attack[~covered]).sum() / w0)
    r1 = float((weight[covered] * attack[covered]).sum() / w1)
    return r1 / r0 if r0 > 0 else math.inf


# ---- the posterior -------------------------------------------------------------------------

@dataclass
class Problem:
    """What one log-posterior evaluation needs."""

    scenarios: list[Scenario]
    names: list[str]
    priors: list[Prior]
    targets: list[Target]
    seed: int
    trials: int
    evaluations: int = 0
    seconds: float = 0.0
    last_error: str = ""
    cache: dict = field(default_factory=dict)

    def measures(self, theta: Sequence[float]) -> list[tuple[float, float]]:
        """(value, Monte Carlo standard error) of every target at θ."""
        key = tuple(float(x) for x in theta)
        if key in self.cache:
            return self.cache[key]
        t0 = time.perf_counter()
        values = dict(zip(self.names, key, strict=True))
        out = []
        compiled: dict[int, CompiledScenario] = {}
        scen: dict[int, Scenario] = {}
        for t in self.targets:  # each scenario varied and compiled once per evaluation
            if t.scenario not in scen:
                scen[t.scenario] = apply_values(self.scenarios[t.scenario], values)
                compiled[t.scenario] = compile_scenario(scen[t.scenario])
            if t.measure == RELATIVE_RISK:
                out.append((relative_risk(compiled[t.scenario], self.seed), 0.0))
            else:
                m, n = measure_of(scen[t.scenario], t.measure, self.seed, self.trials,
                                  compiled=compiled[t.scenario])
                out.append((m, math.sqrt(max(m * (1 - m), 1e-12) / max(n, 1))))
        self.evaluations += 1
        self.seconds += time.perf_counter() - t0
        if len(self.cache) < 100_000:
            self.cache[key] = out
        return out

    def log_prior(self, theta: Sequence[float]) -> float:
        return sum(p.logpdf(float(x)) for p, x in zip(self.priors, theta, strict=True))

    def log_likelihood(self, theta: Sequence[float]) -> float:
        total = 0.0
        for t, (m, s_mc) in zip(self.targets, self.measures(theta), strict=True):
            if not math.isfinite(m):
                return -math.inf
            if t.observed is not None:
                p = min(max(m, CLIP), 1 - CLIP)
                k = round(t.observed.rate * t.observed.n)
                total += k * math.log(p) + (t.observed.n - k) * math.log(1 - p)
            else:
                var = t.se ** 2 + s_mc ** 2
                total += -0.5 * (t.value - m) ** 2 / var - 0.5 * math.log(2 * math.pi * var)
        return total

    def __call__(self, theta: np.ndarray) -> float:
        lp = self.log_prior(theta)
        if not math.isfinite(lp):
            return -math.inf
        try:
            return lp + self.log_likelihood(theta)
        except UserError as err:
            # θ the scenario refuses (validation), or a measure undefined at θ (no trial reaches
            # it): θ cannot have produced the targets
            self.last_error = str(err)
            return -math.inf


@dataclass
class Calibration:
    posterior: pl.DataFrame  # one column per parameter, plus walker, step, log_posterior
    info: dict
    problem: Problem
    written: list[Path] = field(default_factory=list)

    def medians(self) -> dict[str, float]:
        return {n: float(self.posterior[n].median()) for n in self.problem.names}

    def save(self, out_dir: Path, sources: Sequence[Path]) -> list[Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "posterior.parquet"]
        write_parquet(written[0], self.posterior)
        medians = self.medians()
        for i, (scenario, source) in enumerate(zip(self.problem.scenarios, sources,
                                                   strict=True)):
            name = ("calibrated.toml" if len(sources) == 1
                    else f"calibrated-{i + 1}-{Path(source).stem}.toml")
            header = [f"# Calibrated from {source} by `crisis calibrate --method mcmc`: "
                      "posterior medians applied to the values below",
                      *(f"# {n} = {v:.6g} (95% interval {self.info['parameters'][n]['q2.5']:.6g}"
                        f" … {self.info['parameters'][n]['q97.5']:.6g}; prior "
                        f"{self.info['parameters'][n]['prior']})" for n, v in medians.items()),
                      ""]
            text = "\n".join(header) + apply_values(scenario, medians).to_toml()
            written.append(out / name)
            write_bytes(written[-1], text.encode())
        written.append(out / "diagnostics.json")
        write_json(written[-1], self.info["diagnostics"])
        written.append(out / "calibration.json")
        write_json(written[-1], self.info)
        return written


def calibrate_mcmc(scenarios: Sequence[Scenario], names: Sequence[str],
                   targets: Sequence[Target], *, seed: int, trials: int,
                   priors: dict[str, Prior] | None = None, walkers: int | None = None,
                   steps: int = 400, burn: int | None = None,
                   progress: Callable[[int], None] | None = None) -> Calibration:
    """Sample the posterior of the module docstring with emcee; diagnostics with ArviZ."""
    import emcee

    names = list(names)
    if not names:
        raise UserError("--fit: name at least one parameter")
    if len(set(names)) != len(names):
        raise UserError("--fit: a parameter is named twice")
    if not targets:
        raise UserError("--target: give at least one target")
    priors = dict(priors or {})
    unknown = sorted(set(priors) - set(names))
    if unknown:
        raise UserError(f"--prior {unknown[0]}: not a fitted parameter (--fit)")
    for n in names:  # fail early on a bad name
        for s in scenarios:
            apply_values(s, {n: _start_value(n, s)})
    prior_list = [priors.get(n) or default_prior(n, scenarios[0]) for n in names]
    ndim = len(names)
    nwalkers = walkers or max(8, 4 * ndim)
    if nwalkers < 2 * ndim or nwalkers % 2:
        raise UserError(f"--walkers {nwalkers}: an even number ≥ 2 × parameters ({2 * ndim})")
    burn = steps // 3 if burn is None else burn
    if not 0 <= burn < steps:
        raise UserError(f"--burn {burn}: must be below --steps {steps}")
    draws = nwalkers * (steps - burn)
    if draws < MIN_DRAWS:
        raise UserError(f"{nwalkers} walkers × ({steps} steps − {burn} burn-in) = {draws} "
                        f"draws: the posterior needs at least {MIN_DRAWS}; raise --steps")
    problem = Problem(list(scenarios), names, prior_list, list(targets), seed, trials)
    rng = np.random.default_rng(seed)
    start = np.column_stack([p.start(rng, nwalkers) for p in prior_list])
    for w in range(nwalkers):  # every walker must start where the posterior is positive
        tries = 0
        while not math.isfinite(problem(start[w])):
            start[w] = [p.start(rng, 1)[0] for p in prior_list]
            tries += 1
            if tries > 100:
                raise UserError("no starting point with a finite posterior: check the targets "
                                f"and priors ({problem.last_error or 'zero likelihood'})")
    # differential-evolution moves (ter Braak 2006; ter Braak & Vrugt 2008) mix far better than
    # emcee's default stretch move on these low-dimensional posteriors (measured: R-hat 1.009 vs
    # 1.053 for one parameter, 8 walkers, 500 kept steps)
    moves = [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    sampler = emcee.EnsembleSampler(nwalkers, ndim, problem, moves=moves)
    sampler.random_state = np.random.RandomState(seed % 2**32).get_state()
    t0 = time.perf_counter()
    for i, _ in enumerate(sampler.sample(start, iterations=steps)):
        if progress:
            progress(i + 1)
    seconds = time.perf_counter() - t0
    chain = sampler.get_chain()  # (steps, walkers, ndim)
    logp = sampler.get_log_prob()
    kept = chain[burn:]
    rows = {n: kept[:, :, j].T.reshape(-1) for j, n in enumerate(names)}
    walker = np.repeat(np.arange(nwalkers), steps - burn)
    step = np.tile(np.arange(burn, steps), nwalkers)
    posterior = pl.DataFrame({**rows, "walker": walker, "step": step,
                              "log_posterior": logp[burn:].T.reshape(-1)})
    diagnostics = _diagnostics(sampler, names, burn)
    parameters = {}
    for j, n in enumerate(names):
        x = rows[n]
        parameters[n] = {"prior": prior_list[j].describe(), "median": float(np.median(x)),
                         "mean": float(x.mean()), "sd": float(x.std(ddof=1)),
                         "q2.5": float(np.quantile(x, 0.025)),
                         "q97.5": float(np.quantile(x, 0.975))}
    info = {"method": "mcmc (emcee ensemble sampler)", "parameters": parameters,
            "targets": [{"target": t.text or t.describe(), "scenario": t.scenario + 1,
                         "description": t.describe()} for t in targets],
            "seed": seed, "trials": trials, "walkers": nwalkers, "steps": steps, "burn": burn,
            "draws": draws, "evaluations": problem.evaluations, "seconds": seconds,
            "seconds_per_evaluation": problem.seconds / max(problem.evaluations, 1),
            "diagnostics": diagnostics,
            "likelihood": "binomial for observed honor rates; normal with the target's SE and "
                          "the simulated rate's Monte Carlo error otherwise (common random "
                          "numbers)"}
    medians = {n: parameters[n]["median"] for n in names}
    info["at_medians"] = [
        {"target": t.text or t.describe(), "scenario": t.scenario + 1, "target_value": t.value,
         "engine": m}
        for t, (m, _) in zip(targets, problem.measures([medians[n] for n in names]),
                             strict=True)]
    return Calibration(posterior, info, problem)


def _start_value(name: str, scenario: Scenario) -> float:
    """The value that leaves the scenario as it is (1 for a scale)."""
    if name.partition(":")[0].endswith("_scale") or "." not in name and name != "misperception":
        return 1.0  # a scale, or an unknown name that apply_values refuses with its message
    if name == "misperception":
        return float(scenario.scenario.misperception)
    return _path_value(scenario, name)


def _diagnostics(sampler, names: list[str], burn: int) -> dict:
    """Split R-hat and bulk/tail ESS per parameter (ArviZ, walkers as chains), emcee's mean
    acceptance fraction and autocorrelation times."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz as az

        data = az.from_emcee(sampler, var_names=names).sel(draw=slice(burn, None))
        rhat = az.rhat(data)
        ess_bulk = az.ess(data, method="bulk")
        ess_tail = az.ess(data, method="tail")
        tau = sampler.get_autocorr_time(discard=burn, quiet=True)
    out = {"rhat_max": None, "parameters": {},
           "acceptance_fraction": float(np.mean(sampler.acceptance_fraction))}
    worst = 0.0
    for j, n in enumerate(names):
        r = float(rhat[n].values)
        worst = max(worst, r)
        out["parameters"][n] = {"rhat": r, "ess_bulk": float(ess_bulk[n].values),
                                "ess_tail": float(ess_tail[n].values),
                                "autocorrelation_time": float(tau[j])}
    out["rhat_max"] = worst
    out["converged"] = bool(worst < 1.01)
    return out


def format_calibration(cal: Calibration) -> str:
    """The posterior as terminal lines."""
    info, d = cal.info, cal.info["diagnostics"]
    lines = [f"{'parameter':<28} {'median':>9} {'95% interval':>21} {'R-hat':>7} "
             f"{'ESS':>7}  prior"]
    for n, p in info["parameters"].items():
        q = d["parameters"][n]
        lines.append(f"{n:<28} {p['median']:>9.4f} {p['q2.5']:>10.4f} … {p['q97.5']:<8.4f} "
                     f"{q['rhat']:>7.4f} {q['ess_bulk']:>7.0f}  {p['prior']}")
    lines.append("")
    for row in info["at_medians"]:
        lines.append(f"scenario {row['scenario']}: {row['target']} → engine "
                     f"{row['engine']:.4f} at the posterior medians")
    lines.append(f"{info['draws']:,} draws ({info['walkers']} walkers × "
                 f"{info['steps'] - info['burn']} steps after {info['burn']} burn-in), "
                 f"{info['evaluations']:,} evaluations of {info['trials']:,} trials in "
                 f"{info['seconds']:.0f} s; max R-hat {d['rhat_max']:.4f} "
                 f"({'converged' if d['converged'] else 'NOT converged: raise --steps'}), "
                 f"acceptance {d['acceptance_fraction']:.2f}")
    return "\n".join(lines)


def recovery_study(scenario: Scenario, parameter: str, truths: Sequence[float],
                   measures: Sequence[tuple[str, float]], *, seed: int, trials: int,
                   observation_seed: int, walkers: int | None = None, steps: int = 300,
                   burn: int | None = None) -> pl.DataFrame:
    """Calibration recovery (issue 14, item 4): for each true value of ``parameter``, simulate
    every measure of ``measures`` (name, target SE) at the truth with ``observation_seed`` —
    an independent "observation", not the calibration's own trials — calibrate from those
    targets (seed ``seed``) and record whether the 95% posterior interval covers the truth.
    One row per truth: ``truth``, ``q2.5``, ``median``, ``q97.5``, ``covered``, ``rhat``."""
    rows = []
    for truth in truths:
        at_truth = apply_values(scenario, {parameter: truth})
        targets = []
        for measure, se in measures:
            if measure == RELATIVE_RISK:
                value = relative_risk(compile_scenario(at_truth), observation_seed)
            else:
                value, _ = measure_of(at_truth, measure, observation_seed, trials)
            targets.append(Target(measure, 0, value, se, None, f"{measure}={value:.6g}:{se:g}"))
        cal = calibrate_mcmc([scenario], [parameter], targets, seed=seed, trials=trials,
                             walkers=walkers, steps=steps, burn=burn)
        q = cal.info["parameters"][parameter]
        rows.append({"truth": float(truth), "q2.5": q["q2.5"], "median": q["median"],
                     "q97.5": q["q97.5"], "covered": bool(q["q2.5"] <= truth <= q["q97.5"]),
                     "rhat": cal.info["diagnostics"]["rhat_max"]})
    return pl.DataFrame(rows)
