"""Scenario files (design §4): TOML → validated, typed objects.

The file is parsed with the standard library's ``tomllib`` and validated with pydantic models
that forbid unknown keys.  Every problem is reported with the file, the key path
(``alliances[NATO].quota``) and what is wrong, all at once, as a :class:`ConfigError`.
"""

from __future__ import annotations

import copy
import hashlib
import math
import reprlib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    field_validator,
)

from kernels.layout import DECISION_RULES, DETERRENCE_MODES, MAX_ROUNDS, OBLIGATIONS

from ..errors import ConfigError
from .similarity import EXPOSURE_MEASURES

Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value, info):
        # TOML booleans must not pass as 0/1 numbers.
        field = cls.model_fields[info.field_name]
        if isinstance(value, bool) and field.annotation not in (bool, StrictBool):
            raise ValueError("expected a number or string, got a boolean")
        return value


class ScenarioSettings(Section):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    trials: Annotated[int, Field(ge=1, le=10**13)] = 1_000_000
    misperception: Positive = 0.5
    outcome_noise: Positive = 0.3
    mobilization_days: NonNegative = 0.0
    window_days: Annotated[float, Field(gt=0.0, allow_inf_nan=True)] = math.inf
    interoperability_bonus: NonNegative = 0.0
    defection_threshold: Unit = 1.0
    conflict_penalty: Unit = 0.0
    threat_weight: Unit = 0.0
    # step 2 (design §8): "capability" is v1; "expected_response" weighs the cell's expected
    # response E[F · exp(−delay / window_days)], computed once per cell before the trials
    deterrence: Literal[DETERRENCE_MODES] = "capability"  # type: ignore[valid-type]
    # samples per cell of the keyed pilot simulation of E_cell (where no closed form exists)
    pilot_samples: Annotated[int, Field(ge=1024, le=1 << 24)] = 1 << 16

    @field_validator("window_days")
    @classmethod
    def _window_not_nan(cls, value):
        if math.isnan(value):
            raise ValueError("must be a positive number or inf, not nan")
        return value


# scenario settings added after v1, at their neutral values (left out of hashes and dumps)
NEUTRAL_SETTINGS = {"deterrence": "capability", "pilot_samples": 1 << 16}


class State(Section):
    id: Identifier
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    capability: Positive
    commitment: Unit
    stability: Unit = 1.0
    free_riding: Unit = 0.0


class Alliance(Section):
    id: Identifier
    members: Annotated[list[Identifier], Field(min_length=1)]
    obligation: Literal[OBLIGATIONS] = "defense"  # type: ignore[valid-type]
    decision_rule: Literal[DECISION_RULES] = "unanimity"  # type: ignore[valid-type]
    quota: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)] = 0.5
    veto_holders: list[Identifier] = []
    round_days: NonNegative = 1.0
    max_rounds: Annotated[int, Field(ge=1, le=MAX_ROUNDS)] = 5
    integration: Unit = 0.0
    bindingness: Unit = 1.0
    intel_sharing: Unit = 0.0
    # directed pledges: a defense alliance covers only these members when attacked (the others
    # still consult and back); neutral: absent = every member is protected
    protected: list[Identifier] | None = None
    # campaigns (design §7): states that may accede when their threat reaches join_threshold;
    # neutral: none
    candidates: list[Identifier] = []


class Aggressor(Section):
    state: Identifier
    weight: Positive = 1.0
    resolve: Positive = 1.0
    targets: Annotated[dict[str, Positive], Field(min_length=1)]
    attack_mix: Annotated[dict[str, Positive], Field(min_length=1)]


class AttackType(Section):
    severity: Positive = 1.0
    attribution_days: NonNegative = 0.0
    ambiguity: Unit = 0.0


MAX_CAMPAIGN_STEPS = 10_000


class Campaign(Section):
    """``[campaign]`` (design §7): each trial is a trajectory of ``steps`` periods in which
    reputation, the aggressors' resolve, threat and membership carry over.  Every knob is
    neutral at its default; with all of them neutral each period is a v1 crisis."""

    steps: Annotated[int, Field(ge=1, le=MAX_CAMPAIGN_STEPS)]
    crisis_rate: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)] = 1.0
    reputation_learning: Unit = 0.0  # λ
    trust_weight: Unit = 0.0  # ω
    resolve_learning: NonNegative = 0.0  # ρ
    threat_shock: NonNegative = 0.0  # κ
    threat_decay: Unit = 0.0  # δ
    exit_threshold: Unit = 0.0
    join_threshold: Annotated[float, Field(gt=0.0, allow_inf_nan=True)] = math.inf

    @field_validator("join_threshold")
    @classmethod
    def _join_not_nan(cls, value):
        if math.isnan(value):
            raise ValueError("must be a positive number or inf, not nan")
        return value


class Exposure(BaseModel):
    """``default`` plus pair overrides ``"<member>.<target>" = value``."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)
    default: NonNegative = 1.0
    # fill every pair from the alliance-portfolio similarity of member and target
    # (engine.model.similarity); pair overrides still apply on top
    from_: Literal[EXPOSURE_MEASURES] | None = Field(  # type: ignore[valid-type]
        default=None, alias="from")

    @property
    def pairs(self) -> dict[str, float]:
        return dict(self.model_extra or {})


class Scenario(Section):
    scenario: ScenarioSettings
    states: Annotated[list[State], Field(min_length=1)]
    alliances: list[Alliance] = []
    aggressors: Annotated[list[Aggressor], Field(min_length=1)]
    attack_types: Annotated[dict[str, AttackType], Field(min_length=1)]
    exposure: Exposure = Exposure()
    campaign: Campaign | None = None

    def to_toml_dict(self) -> dict:
        """Plain dict of the full scenario (every default filled in), for hashing and dumps."""
        data = self.model_dump(mode="python")
        data["exposure"] = {"default": self.exposure.default, **self.exposure.pairs}
        if self.exposure.from_ is not None:  # only when set: existing scenario hashes unchanged
            data["exposure"]["from"] = self.exposure.from_
        # keys added after v1 appear only when set away from their neutral value, so that every
        # existing scenario keeps its hash (and its run folders stay resumable)
        for key, neutral in NEUTRAL_SETTINGS.items():
            if data["scenario"].get(key) == neutral:
                del data["scenario"][key]
        for alliance in data["alliances"]:
            if not alliance.get("candidates"):
                alliance.pop("candidates", None)
        if data.get("campaign") is None:
            data.pop("campaign", None)
        return data

    # the file this scenario was read from and its bytes (None when built or edited in Python)
    _source_file: str | None = PrivateAttr(default=None)
    _source_text: bytes | None = PrivateAttr(default=None)

    @property
    def source_file(self) -> str | None:
        """The path of the scenario file this was read from (None when built in Python)."""
        return self._source_file

    def __eq__(self, other: object) -> bool:  # the values decide, not where they came from
        if not isinstance(other, Scenario):
            return NotImplemented
        return self.to_toml_dict() == other.to_toml_dict()

    def __hash__(self) -> int:
        return hash(scenario_hash(self))

    def to_toml(self) -> str:
        """The full scenario as TOML text (every default filled in); it loads back equal."""
        import tomli_w

        return tomli_w.dumps(_toml_ready(self.to_toml_dict()))

    def source_text(self) -> bytes:
        """What a run folder keeps as ``scenario.toml``: the file's own bytes when the scenario
        was read from a file and not edited, else :meth:`to_toml`."""
        return self._source_text if self._source_text is not None else self.to_toml().encode()

    def with_values(self, values: Mapping[str, object], *,
                    source: str = "<with_values>") -> Scenario:
        """A copy with the values at parameter paths (``{"alliances.NATO.decision_rule":
        "majority", "states.EST.commitment": 0.7}``) replaced, validated like a scenario file:
        every problem is reported at once as ``SOURCE: key.path: problem``
        (:class:`ConfigError`); a path that names nothing is a :class:`UserError`."""
        from .paths import set_value

        data = copy.deepcopy(self.to_toml_dict())
        for path, value in values.items():
            set_value(data, path, value, option=source)
        return scenario_from_dict(data, source)


def _toml_ready(value):
    """Drop None (TOML has no null) and turn NumPy scalars into Python ones."""
    if isinstance(value, dict):
        return {k: _toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_toml_ready(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # a NumPy scalar
        return value.item()
    return value


def _key_path(data: dict, loc: tuple) -> str:
    """Render a pydantic location as a readable key path, naming list items by their id."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = str(item)
            if isinstance(node, list) and 0 <= item < len(node):
                entry = node[item]
                if isinstance(entry, dict):
                    ident = entry.get("id", entry.get("state"))
                    if isinstance(ident, str):
                        label = ident
                node = entry
            else:
                node = None
            parts.append(f"[{label}]")
        else:
            key = str(item)
            if key.startswith(("function-", "literal[", "constrained-")):
                continue
            parts.append(("." if parts else "") + key)
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts)


def _pydantic_problems(data: dict, err: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for e in err.errors(include_url=False):
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the scenario format)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif "input" in e and not isinstance(e["input"], dict | list):
            msg = f"{msg} (got {e['input']!r})"
        problems.append((_key_path(data, e["loc"]), msg))
    return problems


def _cross_checks(s: Scenario) -> list[tuple[str, str]]:
    """Checks that span sections: ids exist, are unique, and fit together."""
    problems: list[tuple[str, str]] = []
    state_ids: set[str] = set()
    for st in s.states:
        if st.id in state_ids:
            problems.append((f"states[{st.id}].id", f"duplicate state id {st.id!r}"))
        state_ids.add(st.id)

    alliance_ids: set[str] = set()
    for al in s.alliances:
        where = f"alliances[{al.id}]"
        if al.id in alliance_ids:
            problems.append((f"{where}.id", f"duplicate alliance id {al.id!r}"))
        alliance_ids.add(al.id)
        seen: set[str] = set()
        for m in al.members:
            if m not in state_ids:
                problems.append((f"{where}.members", f"unknown state id {m!r}"))
            if m in seen:
                problems.append((f"{where}.members", f"state {m!r} is listed twice"))
            seen.add(m)
        for v in al.veto_holders:
            if v not in seen:
                problems.append(
                    (f"{where}.veto_holders", f"veto holder {v!r} is not a member of {al.id}")
                )
        if al.veto_holders and al.decision_rule != "veto":
            problems.append(
                (f"{where}.veto_holders", "veto holders need decision_rule = \"veto\"")
            )
        if al.protected is not None:
            if not al.protected:
                problems.append((f"{where}.protected", "must list at least one member"))
            for p in al.protected:
                if p not in seen:
                    problems.append((f"{where}.protected", f"{p!r} is not a member of {al.id}"))
            if al.obligation != "defense":
                problems.append((f"{where}.protected", "only defense alliances protect members "
                                 "(collective security covers every member)"))
        if al.decision_rule == "veto" and not al.veto_holders:
            problems.append((f"{where}.veto_holders", "decision_rule \"veto\" needs veto holders"))
        candidates: set[str] = set()
        for cand in al.candidates:
            if cand not in state_ids:
                problems.append((f"{where}.candidates", f"unknown state id {cand!r}"))
            elif cand in seen:
                problems.append((f"{where}.candidates", f"{cand!r} is a member of {al.id} "
                                 f"already"))
            if cand in candidates:
                problems.append((f"{where}.candidates", f"state {cand!r} is listed twice"))
            candidates.add(cand)
        if al.candidates and s.campaign is None:
            problems.append((f"{where}.candidates", "candidates accede only in a campaign: add "
                             "a [campaign] table"))

    aggressor_ids: set[str] = set()
    for ag in s.aggressors:
        where = f"aggressors[{ag.state}]"
        if ag.state not in state_ids:
            problems.append((f"{where}.state", f"unknown state id {ag.state!r}"))
        if ag.state in aggressor_ids:
            problems.append((f"{where}.state", f"state {ag.state!r} is listed as aggressor twice"))
        aggressor_ids.add(ag.state)
        for t in ag.targets:
            if t not in state_ids:
                problems.append((f"{where}.targets.{t}", f"unknown state id {t!r}"))
            if t == ag.state:
                problems.append((f"{where}.targets.{t}", "an aggressor cannot target itself"))
        for k in ag.attack_mix:
            if k not in s.attack_types:
                problems.append((f"{where}.attack_mix.{k}",
                                 f"attack type {k!r} is not defined in [attack_types]"))

    # each value is finite, but a sum may overflow to inf (NaN shares and weights in compile)
    sums = [("states", "capabilities", [st.capability for st in s.states]),
            ("aggressors", "weights", [ag.weight for ag in s.aggressors])]
    for ag in s.aggressors:
        sums.append((f"aggressors[{ag.state}].targets", "weights", list(ag.targets.values())))
        sums.append((f"aggressors[{ag.state}].attack_mix", "weights",
                     list(ag.attack_mix.values())))
    for where, what, numbers in sums:
        if not math.isfinite(sum(numbers)):
            problems.append((where, f"the {what} are too large: their sum overflows"))

    if s.exposure.from_ is not None and "default" in s.exposure.model_fields_set:
        problems.append(("exposure.default", f'cannot be combined with from = '
                         f'"{s.exposure.from_}" (it fills every pair)'))
    for key, value in s.exposure.pairs.items():
        where = f"exposure.{key}"
        member, dot, target = key.partition(".")
        if not dot or not member or not target:
            problems.append((where, 'pair keys look like "MEMBER.TARGET" (quote them in TOML)'))
            continue
        for part in (member, target):
            if part not in state_ids:
                problems.append((where, f"unknown state id {part!r}"))
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append((where, f"must be a number, got {reprlib.repr(value)}"))
        elif not math.isfinite(value) or value < 0:
            problems.append((where, f"must be a finite number ≥ 0, got {value!r}"))
    return problems


def _flatten_exposure(raw: dict) -> dict:
    """TOML reads ``"EST.LAT" = 1`` as a quoted key, but a bare ``EST.LAT = 1`` as a nested table;
    both mean the same pair."""
    exposure = raw.get("exposure")
    if not isinstance(exposure, dict):
        return raw
    flat: dict = {}
    for key, value in exposure.items():
        if isinstance(value, dict) and key != "default":
            for inner, v in value.items():
                flat[f"{key}.{inner}"] = v
        else:
            flat[key] = value
    return {**raw, "exposure": flat}


def scenario_from_dict(data: dict, source: str = "<scenario>") -> Scenario:
    """Validate a parsed TOML document; raise :class:`ConfigError` listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(source, [("", "the scenario must be a TOML table")])
    data = _flatten_exposure(data)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, _pydantic_problems(data, err)) from None
    problems = _cross_checks(scenario)
    if problems:
        raise ConfigError(source, problems)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), [("", "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError(str(path), [("", "is a folder, not a scenario file")]) from None
    except OSError as err:
        raise ConfigError(str(path), [("", f"cannot read: {err.strerror}")]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        problem = f"not UTF-8 text ({err.reason} at byte {err.start})"
        raise ConfigError(str(path), [("", problem)]) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), [("", f"invalid TOML: {err}")]) from None
    except RecursionError:
        raise ConfigError(str(path), [("", "invalid TOML: arrays or tables nested too deeply")]
                          ) from None
    scenario = scenario_from_dict(data, str(path))
    scenario._source_file = str(path)
    scenario._source_text = raw
    return scenario


def scenario_hash(scenario: Scenario) -> str:
    """SHA-256 of the canonical JSON of the fully defaulted scenario (formatting-independent)."""
    import json

    canonical = json.dumps(scenario.to_toml_dict(), sort_keys=True, default=repr,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
