"""Hyper-parameter search: keras-tuner's oracles (random, Hyperband, Bayesian) asked for
trials by one loop that runs them here or on a Dask cluster.

:mod:`.search` is the core (the space from params, the oracle, the ask/run/tell loop);
:mod:`.trials` is the picklable entry a trial runs through, wherever it runs;
:mod:`.cluster` is the Prefect-on-Dask adapter; :mod:`.stage` is what both domains'
``tune`` stages share (MLflow runs per trial, the files ``train`` reads).
"""
