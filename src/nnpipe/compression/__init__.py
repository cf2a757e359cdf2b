"""Deployable variants of a trained Keras model: TFLite conversions, magnitude pruning, and
their measurement (size, the domain's metric computed by running the variant itself,
latency, throughput, parity with the Keras reference).

Conversions and measurements run in child processes (:mod:`~nnpipe.compression.worker`):
TFLite's converter and interpreter are native code, and a crash in one variant (full-
integer LSTMs have been seen to kill the process) must become a recorded "unsupported"
row, never a dead pipeline.
"""
