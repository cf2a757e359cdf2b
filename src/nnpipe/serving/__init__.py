"""Serving the deployable variant that promote chose: :mod:`.predictor` (loading a deploy
folder, the same preprocessing code as training, predictions) and :mod:`.pyfunc` (the
MLflow pyfunc wrapper the registry stores, so ``models:/<name>@champion`` serves it).
"""
