"""Daily stock prices (OHLCV) forecast honestly: the next Close from the last 60 days.

The popular tutorial recipe (an LSTM over 60-step windows of Open, High, Low, Close and
Volume) is kept, but not its mistakes: the scaler is fitted on the training rows only (a
scaler fitted on the whole series leaks the future's price range into training), the
splits are chronological with a gap between them (a random split lets the model see the
days around each test day), and every model is compared with the naive baselines
(tomorrow = today, a moving average) that it has to beat to be worth anything.

Modules: :mod:`~nnpipe.domains.ohlcv.sources` (reading and fetching price files),
:mod:`~nnpipe.domains.ohlcv.validation` (checking and cleaning a price series),
:mod:`~nnpipe.domains.ohlcv.synthetic` (realistic synthetic prices for offline runs),
:mod:`~nnpipe.domains.ohlcv.market` (the yfinance client, an optional extra),
:mod:`~nnpipe.domains.ohlcv.windows` (splits, the train-only scaler, features, windows, targets),
:mod:`~nnpipe.domains.ohlcv.metrics` (errors, baselines, Diebold-Mariano, walk-forward folds),
:mod:`~nnpipe.domains.ohlcv.forecasting` (series to windows, forecasts to scored prices),
:mod:`~nnpipe.domains.ohlcv.models` (the recurrent forecasters, scaling inside),
:mod:`~nnpipe.domains.ohlcv.backtest` (walk-forward re-training) and
:mod:`~nnpipe.domains.ohlcv.figures` (forecast, residual, fold and training plots).
"""
