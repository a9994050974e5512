"""``crisis backtest`` on the real public files of ../shared/data (issue 13, item 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from engine.experiments import backtest as bt
from engine.experiments.backtest import (
    CLIP,
    PREDICTION_COLUMNS,
    SCORE_COLUMNS,
    fit_logit,
    run_backtest,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BF_FILE = DATA / "berkemeier-fuhrmann-2018-alliance-wars.csv"

pytestmark = pytest.mark.skipif(not BF_FILE.is_file(), reason="../shared/data not present")


@pytest.fixture(scope="module")
def result():
    # every 40th year of the MID data for the deterrence comparison: 5 worlds, enough to test
    # the plumbing (tests/test_deterrence_evidence.py checks the numbers)
    return run_backtest(DATA, trials=2000, seed=7, deterrence_step=40)


def _coded() -> pl.DataFrame:
    bf = pl.read_csv(BF_FILE, infer_schema_length=100_000)
    return (bf.filter(pl.col("honorBF").is_not_null() | pl.col("violateBF").is_not_null())
            .select(pl.col("warname").alias("war"), pl.col("atopid").cast(pl.Int64),
                    (pl.col("honorBF").fill_null(0) == 1).cast(pl.Int64).alias("file")))


def test_every_coded_commitment_is_predicted_or_listed(result):
    pred, miss = result.predictions, result.unpredicted
    assert pred.height + miss.height == 139
    both = pl.concat([pred.select("war", "atopid", "split"), miss.select("war", "atopid",
                                                                           "split")])
    assert both.select("war", "atopid").is_unique().all()
    counts = dict(both.group_by("split").len().iter_rows())
    assert counts == {"train": 90, "test": 49}
    assert miss["reason"].is_not_null().all()
    assert pred.height > 0 and set(pred["split"]) == {"train", "test"}


def test_observed_equals_the_file(result):
    both = pl.concat([result.predictions.select("war", "atopid", "observed"),
                      result.unpredicted.select("war", "atopid", "observed")])
    joined = both.join(_coded(), on=["war", "atopid"], how="full", coalesce=True)
    assert joined.height == 139
    assert (joined["observed"] == joined["file"]).all()


def test_predictions_are_probabilities(result):
    pred = result.predictions
    assert tuple(pred.columns) == PREDICTION_COLUMNS
    for model in ("engine", "base_rate", "logit"):
        assert pred[model].is_not_null().all()
        assert pred[model].is_between(0.0, 1.0).all()
    train = pred.filter(pl.col("split") == "train")
    assert pred["base_rate"].n_unique() == 1
    assert pred["base_rate"][0] == pytest.approx(train["observed"].mean())
    # the commitment scale was fitted so the engine's mean on train equals the train rate
    # (bisection to 1e-3 in the scale: a small tolerance in the rate)
    assert train["engine"].mean() == pytest.approx(train["observed"].mean(), abs=0.01)
    assert (pred["year"] <= pred["world_year"]).all()
    assert ((pred["split"] == "train") == (pred["year"] <= 1944)).all()


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from scipy.stats import rankdata

    ranks = rankdata(p)
    n1, n0 = int(y.sum()), int((1 - y).sum())
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def test_scores_recomputed_from_predictions(result, tmp_path):
    result.save(tmp_path)
    pred = pl.read_parquet(tmp_path / "predictions.parquet")
    scores = pl.read_parquet(tmp_path / "scores.parquet")
    assert tuple(scores.columns) == SCORE_COLUMNS
    assert scores.height == 6
    for row in scores.iter_rows(named=True):
        part = pred.filter(pl.col("split") == row["split"])
        y = part["observed"].to_numpy().astype(float)
        p = np.clip(part[row["model"]].to_numpy(), CLIP, 1 - CLIP)
        assert row["n"] == part.height
        assert row["brier"] == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
        assert row["log_loss"] == pytest.approx(
            -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rel=1e-12)
        if 0 < y.sum() < y.size:
            assert row["auc"] == pytest.approx(_auc(y, p), rel=1e-12)


def test_engine_fit_ignores_test_outcomes(result, tmp_path):
    """Flip every test-split outcome in a copy of the data: the fitted commitment_scale, the
    engine's and the base rate's probabilities (train and test) are unchanged, bit for bit."""
    import shutil

    test_wars = set(result.predictions.filter(pl.col("split") == "test")["war"]) | set(
        result.unpredicted.filter(pl.col("split") == "test")["war"])
    for name in bt.FILES.values():
        shutil.copyfile(DATA / name, tmp_path / name)
    bf = pl.read_csv(BF_FILE, infer_schema_length=100_000)
    flip = pl.col("warname").is_in(sorted(test_wars))
    bf.with_columns(pl.when(flip).then(pl.col("violateBF")).otherwise(pl.col("honorBF"))
                    .alias("honorBF"),
                    pl.when(flip).then(pl.col("honorBF")).otherwise(pl.col("violateBF"))
                    .alias("violateBF")).write_csv(tmp_path / BF_FILE.name)
    flipped = run_backtest(tmp_path, trials=2000, seed=7, deterrence_step=0)
    test = flipped.predictions.filter(pl.col("split") == "test")
    original = result.predictions.filter(pl.col("split") == "test")
    assert (test["observed"] == 1 - original["observed"]).all()  # the flip took
    assert flipped.info["fit"] == result.info["fit"]
    for model in ("engine", "base_rate"):
        assert flipped.predictions[model].equals(result.predictions[model]), model


def test_deterrence_comparison_is_written_and_reported(result, tmp_path):
    from engine.experiments.deterrence_evidence import COLUMNS, DYAD_COLUMNS
    from engine.present.plots import plot_relative_risk
    from engine.present.report import write_report

    result.save(tmp_path)
    table = pl.read_parquet(tmp_path / "deterrence.parquet")
    dyads = pl.read_parquet(tmp_path / "deterrence_dyads.parquet")
    assert tuple(table.columns) == COLUMNS and tuple(dyads.columns) == DYAD_COLUMNS
    assert sorted(dyads["year"].unique()) == [1816, 1856, 1896, 1936, 1976]
    info = result.info["deterrence"]
    assert info["dyad_years"] == dyads.height and info["events"] == dyads["observed"].sum()
    obs = table.filter((pl.col("source") == "observed") & (pl.col("period") == "all")
                       & (pl.col("estimate") == "crude")).row(0, named=True)
    cov = dyads.filter(pl.col("covered") == 1)["observed"].mean()
    unc = dyads.filter(pl.col("covered") == 0)["observed"].mean()
    assert obs["relative_risk"] == pytest.approx(cov / unc, rel=1e-12)
    assert any("Leeds (2003)" in c for c in result.info["citations"])
    plot_relative_risk(table, tmp_path)
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert "Deterrence: do defense pacts deter?" in page and 'id="fig-relative_risk"' in page


def test_logit_is_fitted_on_train_only(result):
    pred = result.predictions
    before, _ = fit_logit(pred)
    assert before == pytest.approx(pred["logit"].to_numpy(), rel=1e-9)
    flipped = pred.with_columns(
        pl.when(pl.col("split") == "test").then(1 - pl.col("observed"))
        .otherwise(pl.col("observed")).alias("observed"))
    after, _ = fit_logit(flipped)
    assert np.array_equal(before, after)


@pytest.mark.slow
def test_cli_writes_every_file(tmp_path):
    from engine.cli.main import main

    out = tmp_path / "bt"
    res = CliRunner().invoke(main, ["backtest", "--data", str(DATA), "--trials", "500",
                                    "--seed", "3", "--deterrence-step", "50", "--out", str(out),
                                    "-q"])
    assert res.exit_code == 0, res.output
    for name in ("predictions.parquet", "unpredicted.parquet", "scores.parquet",
                 "deterrence.parquet", "deterrence_dyads.parquet", "backtest.json",
                 "reliability.png", "reliability.svg", "roc.png", "roc.svg",
                 "relative_risk.png", "relative_risk.svg"):
        assert (out / name).is_file(), name
    assert "brier" in res.output and "Reading (test split" in res.output
    assert "Deterrence: relative risk" in res.output


def test_report_renders_a_backtest_folder(result, tmp_path):
    from engine.present.plots import plot_reliability, plot_roc
    from engine.present.report import write_report

    result.save(tmp_path)
    plot_reliability(result.predictions, tmp_path)
    plot_roc(result.predictions, tmp_path)
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert "Backtest: alliance commitments in war" in page
    assert 'id="fig-reliability"' in page and 'id="fig-roc"' in page
    assert "Not predicted, by reason" in page
