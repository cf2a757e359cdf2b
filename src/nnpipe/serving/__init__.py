"""Serving the deployable variant that promote chose.

- :mod:`.predictor` loads a deploy folder (checked as data, the domain's predictor in
  front: the same preprocessing code as training); :mod:`.pyfunc` is the MLflow pyfunc
  wrapper the registry stores, so ``models:/<name>@champion`` serves it; :mod:`.registry`
  finds a registered version by alias.
- ``nnpipe serve``: :mod:`.api` builds the app from :mod:`.settings`, :mod:`.middleware`
  (API key before the body, body limit, 499), :mod:`.auth`, :mod:`.store` (the served
  versions and the alias poller), :mod:`.routes` (``/health``, ``/ready``, ``/models``,
  ``/metrics``), :mod:`.errors`, :mod:`.metrics`, :mod:`.openapi`, and one router per
  registered domain (its ``api_router`` hook, built on :mod:`.endpoints` and
  :mod:`.workers`).
- ``nnpipe predict``: each domain's ``predict_files`` hook reads its files;
  :mod:`.batch` writes the table.
"""
