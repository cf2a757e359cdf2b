"""The OHLCV domain's stages, one module per step (see nnpipe.stages for the registry)."""
