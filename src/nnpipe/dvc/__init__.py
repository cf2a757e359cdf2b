"""Everything nnpipe does with DVC, one module per job:

- :mod:`~nnpipe.dvc.pipeline_file`: writes ``dvc.yaml`` from the stage registry (``nnpipe
  dvc-yaml``), each stage depending on the files of the code it imports;
- :mod:`~nnpipe.dvc.repo`: asks DVC what is current and records what a Prefect flow ran;
- :mod:`~nnpipe.dvc.folder_hash`: DVC's hash of a folder, computed without DVC;
- :mod:`~nnpipe.dvc.plots`: the project's plot template and the offline ``dvc plots`` page.
"""
