"""The run options, one schema for the command line, ``run.json`` and ``submit.json``; and the
fields of ``manifest.json`` that readers rely on.

Every value a run reads back from a file is validated with the same bounds as the option that
wrote it (``--trials``, ``--seed``, ``--block-size``, ``--save-trials``, ``--shard``): a file
edited by hand or by someone else cannot smuggle in a value the command line would refuse.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import UserError
from ..model.limits import MAX_SAVE_TRIALS, MAX_TRIALS_PER_RUN

# The bounds of the options (click's IntRange on the command line uses the same numbers).
MAX_SEED = 2**63 - 1
MAX_BLOCK_SIZE = 2**62
MAX_SHARDS = 1_000_000

Trials = Annotated[int, Field(ge=1, le=MAX_TRIALS_PER_RUN * MAX_SHARDS, strict=True)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED, strict=True)]
BlockSize = Annotated[int, Field(ge=1, le=MAX_BLOCK_SIZE, strict=True)]
SaveTrials = Annotated[int, Field(ge=0, le=MAX_SAVE_TRIALS, strict=True)]
ShardCount = Annotated[int, Field(ge=1, le=MAX_SHARDS, strict=True)]
ScenarioHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)]
EngineVersion = Annotated[str, Field(pattern=r"^[0-9A-Za-z.+_-]{1,40}$")]


def shard_range(trials: int, index: int, count: int) -> tuple[int, int]:
    """Trials of shard ``index`` of ``count``: a contiguous, complete, non-overlapping split."""
    return trials * index // count, trials * (index + 1) // count


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RunOptions(Strict):
    """``run.json``: what a run was started with, so that ``--resume`` continues the same run."""

    trials: Trials
    seed: Seed
    block_size: BlockSize
    save_trials: SaveTrials
    shard: tuple[Annotated[int, Field(ge=0, strict=True)], ShardCount] | None = None
    scenario_hash: ScenarioHash
    scenario_file: Annotated[str, Field(max_length=4096)] | None = None
    engine: EngineVersion
    # SHA-256 of the posterior.parquet the run's parameters come from (``run --posterior``);
    # absent for a run of the scenario's own values
    posterior_sha256: Sha256 | None = None

    @model_validator(mode="after")
    def _shard_in_range(self):
        if self.shard is not None:
            index, count = self.shard
            if index >= count:
                raise ValueError(f"shard {index}/{count}: need 0 ≤ I < K")
            if count > self.trials:
                raise ValueError(f"{count} shards is more than the {self.trials} trials")
        return self


    @property
    def trial_range(self) -> tuple[int, int]:
        """The trials this run (or shard) simulates: ``[⌊I·N/K⌋, ⌊(I+1)·N/K⌋)`` of shard I/K."""
        return (0, self.trials) if self.shard is None else shard_range(self.trials, *self.shard)


class Versions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    engine: EngineVersion


class PosteriorInfo(BaseModel):
    """The manifest's ``posterior`` section (a run over a posterior): what merge and compare
    rely on."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    sha256: Sha256
    draws: Annotated[int, Field(ge=1, strict=True)]
    trials_per_draw: Annotated[int, Field(ge=1, strict=True)]
    parameters: list[Annotated[str, Field(max_length=300)]]


class RunManifest(BaseModel):
    """``manifest.json`` of a complete run, shard or merged run: the fields readers rely on
    (others are kept as they are).  ``files`` maps each output file to its SHA-256 and
    ``totals`` holds the counts summed over every cell; manifests written before they existed
    have neither."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    scenario: Annotated[str, Field(max_length=10_000)]
    scenario_file: Annotated[str, Field(max_length=4096)] | None = None
    scenario_hash: ScenarioHash
    seed: Seed
    trials: Trials
    trial_range: Annotated[tuple[Count, Count], Field(strict=False)]  # a JSON list
    shard: Annotated[tuple[Annotated[int, Field(ge=0, strict=True)], ShardCount],
                     Field(strict=False)] | None = None
    block_size: BlockSize
    save_trials: SaveTrials
    threads: int | str | list[int | str]
    wall_time_s: Annotated[float, Field(ge=0, allow_inf_nan=False, strict=False)]
    versions: Versions
    files: dict[Annotated[str, Field(max_length=100)], Sha256] | None = None
    totals: dict[Annotated[str, Field(max_length=100)], Count] | None = None
    posterior: PosteriorInfo | None = None

    @model_validator(mode="after")
    def _consistent(self):
        low, high = self.trial_range
        if not low <= high <= self.trials:
            raise ValueError(f"trial range {list(self.trial_range)} is not within the "
                             f"{self.trials} trials")
        if self.shard is not None:
            index, count = self.shard
            expected = shard_range(self.trials, index, count)
            if index >= count or self.trial_range != expected:
                raise ValueError(f"trial range {list(self.trial_range)} is not shard "
                                 f"{index}/{count}'s {list(expected)}")
        if self.totals is not None and self.totals.get("trials") != high - low:
            raise ValueError(f"totals.trials {self.totals.get('trials')} is not the "
                             f"{high - low} trials of the range")
        return self


def validation_problems(err: ValidationError, limit: int = 10) -> str:
    """``key: problem; key: problem`` from a pydantic error, values never echoed raw (keys
    cut to 80 characters; at most ``limit`` problems, then how many more)."""
    parts = []
    errors = err.errors(include_url=False, include_input=False)
    for e in errors[:limit]:
        key = ".".join(str(p)[:80] for p in e["loc"]) or "(file)"
        parts.append(f"{key}: {e['msg'][:300]}")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more problems")
    return "; ".join(parts)


def options_json(options: RunOptions) -> dict:
    """``run.json``'s content: the options, without ``posterior_sha256`` when there is no
    posterior (so a plain run's file is what it always was)."""
    data = options.model_dump(mode="json")
    if data.get("posterior_sha256") is None:
        data.pop("posterior_sha256", None)
    return data


def parse_options(data: object, where: str) -> RunOptions:
    """Validate ``run.json``'s content; a :class:`UserError` naming the file and every key."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: not a JSON object")
    if isinstance(data.get("shard"), list):
        data = {**data, "shard": tuple(data["shard"])}
    try:
        return RunOptions.model_validate(data)
    except ValidationError as err:
        raise UserError(f"{where}: {validation_problems(err)}") from None


def parse_manifest(data: object, where: str) -> RunManifest:
    """Validate ``manifest.json``'s content; a :class:`UserError` naming the file and every
    key."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: not a JSON object")
    try:
        return RunManifest.model_validate(data)
    except ValidationError as err:
        raise UserError(f"{where}: {validation_problems(err)}") from None
