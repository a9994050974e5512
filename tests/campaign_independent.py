"""A small simulation of campaigns (design §7) written from the design text alone, as an
independent check of the campaign kernel (tests/test_campaign_statistics.py).

It shares nothing with the engine's dynamics: it reads the scenario *dict* (not the compiled
arrays), draws with NumPy's own generator (``np.random.default_rng(seed)``) rather than the keyed
hashes, draws the deterrence and outcome noise as normals (``resolve · m · exp(σZ) > R / cap_a``
literally) rather than as uniforms against Φ, and draws one uniform per round per waiting member
(design §2 step 4's literal per-round law) rather than the engine's one uniform per member.  So
the two agree in distribution, never draw for draw.

The supported subset is small and asserted by :func:`check_supported`: ``capability`` deterrence,
one aggressor that is no alliance's member or candidate, ``defense`` alliances (at most two)
under ``unanimity`` or ``majority``, no ``protected`` lists, and the v1 knobs that only shape
delay, threat in consultation, free riding or conflict neutral (``window_days = inf``,
``interoperability_bonus = 0``, ``threat_weight = 0``, ``free_riding = 0``,
``conflict_penalty = 0``), so the delay never matters and ``p_i`` is the same in every round.
Targets and attack types may be several (by weight).

A period (design §7), for one trajectory with reputation ``r`` (1), the resolve multiplier ``m``
(1), threat ``h`` (0) and the active members of each alliance (its members):

* quiet with probability ``1 − crisis_rate``: ``h ← (1 − δ)·h`` only;
* else a crisis: target and attack type by weight; the covering alliances are those not
  dissolved with the target active and some other active member; the allies are their active
  members but the target, ``cred_i = max_A(commitment_i · bindingness_A) · r_i`` over the
  covering ``A`` holding ``i``, ``R = cap_t + Σ cred_i · cap_i``; the aggressor attacks iff
  ``resolve · m · exp(σZ) > R / cap_a``;
* attacked: in every covering alliance the target backs from the start; in round 1..max_rounds
  each member not yet backing backs iff ``U < p_i``, ``p_i = commitment · bindingness ·
  (1 − ambiguity) · (1 − ω + ω · r̄_{A,i})`` with ``r̄_{A,i}`` the mean reputation of ``A``'s
  other active members but the target (1 with none); the alliance decides in the first round its
  rule holds (all back; more than half of the active members back).  The backers (but the
  target) of every deciding alliance deliver with ``stability``; ``F = cap_t + Σ delivered cap``;
  repelled iff ``F · exp(σ_o Z') > cap_a · severity``;
* updates, in order: reputation (every consulted alliance in order, every active member but the
  target: honored — backed there and delivered — ``r ← r + λ(1 − r)``, else
  ``r ← r · (1 − λ · bindingness)``), only when attacked; aggressor learning (``m · e^{∓ρ}``);
  threat (``h_i ← min(1, (1 − δ)·h_i + κ · exposure(i, t))``); exit (alliances in order, active
  members but the target in state order, each leaving when the mean reputation of the other
  active members but the target is below ``exit_threshold``; fewer than two left after an exit:
  dissolved); accession (a candidate not active, of an alliance not dissolved, joins when
  ``h ≥ join_threshold``).

Per trajectory and period it records, at the end of the period: deterred, succeeded, the mean
reputation of the states on any alliance's roster (members and candidates), the resolve
multiplier, exits, joins and whether each alliance is still alive.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass

import numpy as np

# design §7 [campaign] defaults (every knob neutral)
CAMPAIGN_DEFAULTS = {"crisis_rate": 1.0, "reputation_learning": 0.0, "trust_weight": 0.0,
                     "resolve_learning": 0.0, "threat_shock": 0.0, "threat_decay": 0.0,
                     "exit_threshold": 0.0, "join_threshold": math.inf}


@dataclass
class Paths:
    """Per-trajectory records, arrays of shape (n, steps) unless noted."""

    deterred: np.ndarray  # bool
    succeeded: np.ndarray  # bool
    reputation: np.ndarray  # float: mean reputation of the roster states
    resolve: np.ndarray  # float: the aggressor's resolve multiplier
    exits: np.ndarray  # int
    joins: np.ndarray  # int
    alive: np.ndarray  # bool (n, steps, alliances)
    successes: np.ndarray  # int (n,): successful aggressions over the trajectory


def check_supported(data: dict) -> None:
    """Raise AssertionError unless ``data`` is in the subset this simulation implements."""
    settings = data["scenario"]
    assert settings.get("deterrence", "capability") == "capability"
    assert math.isinf(settings.get("window_days", math.inf))
    for key in ("interoperability_bonus", "threat_weight", "conflict_penalty"):
        assert settings.get(key, 0.0) == 0.0, key
    assert len(data["aggressors"]) == 1
    aggressor = data["aggressors"][0]["state"]
    assert 1 <= len(data["alliances"]) <= 2
    for al in data["alliances"]:
        assert al.get("obligation", "defense") == "defense"
        assert al.get("decision_rule", "unanimity") in ("unanimity", "majority")
        assert "max_rounds" in al and not al.get("protected")
        assert aggressor not in al["members"] + al.get("candidates", [])
    for st in data["states"]:
        assert st.get("free_riding", 0.0) == 0.0
    assert "campaign" in data and set(data["campaign"]) <= {"steps", *CAMPAIGN_DEFAULTS}


def _chooser(weights: dict[str, float]):
    """A function of a uniform ``u`` that picks a key with probability proportional to its
    weight."""
    names = list(weights)
    total = sum(weights.values())
    cumulative = list(itertools.accumulate(weights[x] / total for x in names))

    def pick(u: float) -> str:
        return names[min(bisect.bisect_right(cumulative, u), len(names) - 1)]

    return pick


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 1.0


def simulate(data: dict, n: int, seed: int) -> Paths:
    """``n`` independent trajectories of the campaign scenario ``data`` (a scenario dict)."""
    check_supported(data)
    knobs = {**CAMPAIGN_DEFAULTS, **data["campaign"]}
    steps = int(data["campaign"]["steps"])
    lam, omega = knobs["reputation_learning"], knobs["trust_weight"]
    rho, kappa, delta = knobs["resolve_learning"], knobs["threat_shock"], knobs["threat_decay"]
    settings = data["scenario"]
    sigma, sigma_o = settings["misperception"], settings["outcome_noise"]

    order = [st["id"] for st in data["states"]]  # the state order
    rank = {sid: x for x, sid in enumerate(order)}
    cap = {st["id"]: st["capability"] for st in data["states"]}
    commitment = {st["id"]: st["commitment"] for st in data["states"]}
    stability = {st["id"]: st.get("stability", 1.0) for st in data["states"]}
    alliances = data["alliances"]
    bind = [al.get("bindingness", 1.0) for al in alliances]
    rule = [al.get("decision_rule", "unanimity") for al in alliances]
    candidates = [list(al.get("candidates", [])) for al in alliances]
    roster_states = sorted({s for al in alliances for s in al["members"] + al.get("candidates",
                                                                                   [])})
    agg = data["aggressors"][0]
    a = agg["state"]
    resolve = agg.get("resolve", 1.0)
    pick_target, pick_type = _chooser(agg["targets"]), _chooser(agg["attack_mix"])
    types = data["attack_types"]
    exposure = data.get("exposure", {})

    def expo(i: str, t: str) -> float:
        return exposure.get(f"{i}.{t}", exposure.get("default", 1.0))

    rng = np.random.default_rng(seed)
    n_al = len(alliances)
    out = Paths(np.zeros((n, steps), bool), np.zeros((n, steps), bool),
                np.zeros((n, steps)), np.zeros((n, steps)), np.zeros((n, steps), int),
                np.zeros((n, steps), int), np.zeros((n, steps, n_al), bool),
                np.zeros(n, int))
    for g in range(n):
        r = dict.fromkeys(order, 1.0)
        m = 1.0
        h = dict.fromkeys(order, 0.0)
        active = [set(al["members"]) for al in alliances]
        alive = [True] * n_al
        for s in range(steps):
            if not rng.random() < knobs["crisis_rate"]:
                h = {i: (1.0 - delta) * x for i, x in h.items()}
            else:
                t = pick_target(rng.random())
                k = pick_type(rng.random())
                severity = types[k].get("severity", 1.0)
                ambiguity = types[k].get("ambiguity", 0.0)
                covering = [x for x in range(n_al)
                            if alive[x] and t in active[x] and len(active[x] - {t}) > 0]
                # deterrence (capability mode with reputation and learned resolve)
                cred: dict[str, float] = {}
                for x in covering:
                    for i in active[x] - {t}:
                        cred[i] = max(cred.get(i, 0.0), commitment[i] * bind[x])
                response = cap[t] + sum(cred[i] * r[i] * cap[i] for i in cred)
                attacks = resolve * m * math.exp(sigma * rng.standard_normal()) > \
                    response / cap[a]
                out.deterred[g, s] = not attacks
                if attacks:
                    backed, decided = [], []
                    for x in covering:
                        members = sorted(active[x], key=rank.get)
                        others = [i for i in members if i != t]
                        backing = {t}
                        for _ in range(alliances[x]["max_rounds"]):
                            for i in others:
                                if i in backing:
                                    continue
                                trust = 1.0 - omega + omega * _mean(
                                    [r[j] for j in others if j != i])
                                p = commitment[i] * bind[x] * (1.0 - ambiguity) * trust
                                if rng.random() < p:
                                    backing.add(i)
                            if (len(backing) == len(members) if rule[x] == "unanimity"
                                    else len(backing) > len(members) / 2):
                                decided.append(x)
                                break
                        backed.append(backing)
                    responders = sorted({i for x, b in zip(covering, backed, strict=True)
                                         if x in decided for i in b if i != t}, key=rank.get)
                    delivered = {i for i in responders if rng.random() < stability[i]}
                    force = cap[t] + sum(cap[i] for i in delivered)
                    repelled = force * math.exp(sigma_o * rng.standard_normal()) > \
                        cap[a] * severity
                    out.succeeded[g, s] = not repelled
                    for x, backing in zip(covering, backed, strict=True):
                        for i in sorted(active[x] - {t}, key=rank.get):
                            if i in backing and i in delivered:
                                r[i] = r[i] + lam * (1.0 - r[i])
                            else:
                                r[i] = r[i] * (1.0 - lam * bind[x])
                    m *= math.exp(-rho) if repelled else math.exp(rho)
                h = {i: min(1.0, (1.0 - delta) * x + kappa * expo(i, t)) for i, x in h.items()}
                for x in range(n_al):
                    if not alive[x]:
                        continue
                    left = 0
                    for i in sorted(active[x] - {t}, key=rank.get):
                        if _mean([r[j] for j in active[x] if j not in (i, t)]) < \
                                knobs["exit_threshold"]:
                            active[x].discard(i)
                            left += 1
                    out.exits[g, s] += left
                    if left and len(active[x]) < 2:
                        alive[x] = False
                        active[x] = set()
                for x in range(n_al):
                    if alive[x]:
                        for j in candidates[x]:
                            if j not in active[x] and h[j] >= knobs["join_threshold"]:
                                active[x].add(j)
                                out.joins[g, s] += 1
            out.reputation[g, s] = _mean([r[i] for i in roster_states])
            out.resolve[g, s] = m
            out.alive[g, s] = alive
        out.successes[g] = int(out.succeeded[g].sum())
    return out
