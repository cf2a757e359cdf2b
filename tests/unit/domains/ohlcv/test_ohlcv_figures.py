"""Forecast figures: valid PNGs, helpful refusals, NaN tolerated, no pyplot on import."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnpipe.domains.ohlcv.figures import (
    plot_fold_errors,
    plot_forecast,
    plot_history,
    plot_residuals,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N = 40
DATES = np.arange("2024-01-01", N, dtype="datetime64[D]")
ISO_DATES = [str(d) for d in DATES]


def assert_png(path: Path, min_width: int = 300, min_height: int = 200) -> None:
    """A readable PNG of a plausible size for a small dpi-100 figure, no temp file left."""
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
    assert min_width <= width <= 2000
    assert min_height <= height <= 1000
    assert not list(path.parent.glob(f".{path.name}.*"))


def prices(n: int = N) -> np.ndarray:
    rng = np.random.default_rng(0)
    return 100 + np.cumsum(rng.normal(0, 1, n))


def forecasts_of(actual: np.ndarray) -> dict[str, np.ndarray]:
    persistence = np.r_[np.nan, actual[:-1]]
    moving = np.convolve(actual, np.ones(5) / 5, mode="full")[: actual.size]
    moving[:4] = np.nan  # the moving average's warm-up
    return {"model": actual + 0.5, "persistence": persistence, "moving average": moving}


def fold_rows(n_folds: int) -> list[dict]:
    return [
        {
            "fold": k,
            "model": {"rmse": 1.0 + 0.1 * k, "mase": 0.9},
            "persistence": {"rmse": 1.2, "mase": 1.0},
            "moving_average": {"rmse": 1.5 + 0.05 * k, "mase": 1.3},
        }
        for k in range(1, n_folds + 1)
    ]


# --------------------------------------------------------------------------- plot_forecast


@pytest.mark.parametrize("dates", [DATES, ISO_DATES], ids=["datetime64", "iso-strings"])
def test_forecast_writes_png_in_new_folder(tmp_path, dates):
    actual = prices()
    out = plot_forecast(
        dates, actual, forecasts_of(actual), tmp_path / "a" / "b" / "f.png", "AAPL, test split"
    )
    assert out == tmp_path / "a" / "b" / "f.png"
    assert_png(out, min_width=800, min_height=350)


def test_forecast_draws_with_nan_everywhere(tmp_path):
    actual = prices()
    actual[[3, 10]] = np.nan
    forecasts = {"model": np.full(N, np.nan), "persistence": np.r_[np.nan, actual[:-1]]}
    assert_png(plot_forecast(DATES, actual, forecasts, tmp_path / "f.png", "gaps"))


def test_forecast_accepts_column_vector_model_output(tmp_path):
    actual = prices()
    out = plot_forecast(DATES, actual, {"model": actual.reshape(-1, 1)}, tmp_path / "f.png", "t")
    assert_png(out)


def test_forecast_mismatched_actual_names_argument_and_lengths(tmp_path):
    with pytest.raises(ValueError, match=r"actual has 39 value\(s\) but dates has 40"):
        plot_forecast(DATES, prices(39), {"model": prices()}, tmp_path / "f.png", "t")


def test_forecast_mismatched_forecast_names_which_one(tmp_path):
    forecasts = {"model": prices(), "persistence": prices(12)}
    with pytest.raises(ValueError, match=r"forecasts\['persistence'\] has 12 .* dates has 40"):
        plot_forecast(DATES, prices(), forecasts, tmp_path / "f.png", "t")
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize(
    ("dates", "forecasts", "message"),
    [
        ([], {"model": []}, "dates is empty"),
        (DATES, {}, "forecasts is empty"),
        (["2024-01-01", None, *ISO_DATES[2:]], {"model": prices()}, "1 missing date"),
        (DATES[::-1], {"model": prices()}, "not in increasing order"),
        (["not a date"] * N, {"model": prices()}, "could not be read as dates"),
    ],
)
def test_forecast_refuses_bad_inputs(tmp_path, dates, forecasts, message):
    actual = prices(len(dates))
    with pytest.raises(ValueError, match=message):
        plot_forecast(dates, actual, forecasts, tmp_path / "f.png", "t")


# --------------------------------------------------------------------------- plot_residuals


def test_residuals_writes_two_panel_png(tmp_path):
    residuals = np.random.default_rng(1).normal(0.2, 1.0, N)
    out = plot_residuals(ISO_DATES, residuals, tmp_path / "r" / "residuals.png", "residuals")
    assert out == tmp_path / "r" / "residuals.png"
    assert_png(out, min_width=900)


def test_residuals_draw_with_nan_and_with_no_finite_value(tmp_path):
    residuals = np.random.default_rng(1).normal(0.0, 1.0, N)
    residuals[:5] = np.nan
    assert_png(plot_residuals(DATES, residuals, tmp_path / "some.png", "t"))
    assert_png(plot_residuals(DATES, np.full(N, np.nan), tmp_path / "none.png", "t"))


def test_residuals_mismatched_lengths(tmp_path):
    with pytest.raises(ValueError, match=r"residuals has 41 value\(s\) but dates has 40"):
        plot_residuals(DATES, np.zeros(N + 1), tmp_path / "r.png", "t")


def test_residuals_refuse_empty(tmp_path):
    with pytest.raises(ValueError, match="dates is empty"):
        plot_residuals([], np.array([]), tmp_path / "r.png", "t")


# --------------------------------------------------------------------------- plot_fold_errors


@pytest.mark.parametrize("n_folds", [1, 5])
def test_fold_errors_writes_png(tmp_path, n_folds):
    out = plot_fold_errors(fold_rows(n_folds), tmp_path / "folds" / "rmse.png")
    assert out == tmp_path / "folds" / "rmse.png"
    assert_png(out)


def test_fold_errors_other_metric_and_missing_values(tmp_path):
    rows = fold_rows(3)
    rows[1]["model"]["mase"] = None
    rows[2]["persistence"]["mase"] = float("nan")
    del rows[0]["moving_average"]
    assert_png(plot_fold_errors(rows, tmp_path / "mase.png", metric="mase"))


def test_fold_errors_unknown_metric_lists_available(tmp_path):
    with pytest.raises(ValueError, match=r"'rsme' has no value .* \['mase', 'rmse'\]"):
        plot_fold_errors(fold_rows(2), tmp_path / "f.png", metric="rsme")


@pytest.mark.parametrize(
    ("folds", "message"),
    [
        ([], "folds is empty"),
        ([{"fold": 1, "rmse": 1.0}], "no forecaster in folds"),
    ],
)
def test_fold_errors_refuse_bad_rows(tmp_path, folds, message):
    with pytest.raises(ValueError, match=message):
        plot_fold_errors(folds, tmp_path / "f.png")


# --------------------------------------------------------------------------- plot_history


def test_history_writes_png_with_lr_panel(tmp_path):
    history = [
        {"epoch": e, "loss": 1.0 / e, "val_loss": 1.2 / e, "lr": 1e-3 * 0.5 ** (e // 3)}
        for e in range(1, 11)
    ]
    out = plot_history(history, tmp_path / "h" / "training_curves.png")
    assert out == tmp_path / "h" / "training_curves.png"
    assert_png(out, min_width=800)


def test_history_tolerates_missing_none_nan_and_non_positive(tmp_path):
    history = [
        {"epoch": 1, "loss": 2.0},
        {"epoch": 2, "loss": None, "val_loss": 1.5},
        {"loss": float("nan"), "val_loss": 0.0},
        {"epoch": 4, "loss": 0.8, "val_loss": 1.1, "lr": None},
    ]
    assert_png(plot_history(history, tmp_path / "h.png"))


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([], "history is empty"),
        (
            [{"epoch": 1, "train_loss": 0.3}],
            r"no positive loss .* keys seen: \['epoch', 'train_loss'\]",
        ),
        ([{"epoch": 1, "loss": "low"}], r"history\[0\]\['loss'\] is 'low'"),
    ],
)
def test_history_refuses_unusable_rows(tmp_path, history, message):
    with pytest.raises(ValueError, match=message):
        plot_history(history, tmp_path / "h.png")


# --------------------------------------------------------------------------- import


def test_import_does_not_load_pyplot():
    """pyplot would pick a GUI backend and keep global figures; the object API needs neither."""
    code = (
        "import sys, nnpipe.domains.ohlcv.figures; "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
