"""Hyper-parameter search: keras-tuner's oracles (random, Hyperband, Bayesian) asked for
trials by one loop that runs them here or on a Dask cluster.

:mod:`.oracle` is the space from params and the keras-tuner oracle; :mod:`.search` the
ask/run/tell loop;
:mod:`.trials` is the picklable entry a trial runs through, wherever it runs;
:mod:`.cluster` is the Prefect-on-Dask adapter; :mod:`nnpipe.stages.tuning` is what both
domains' ``tune`` stages share (MLflow runs per trial, the files ``train`` reads).
"""
