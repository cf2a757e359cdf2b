"""Everything specific to one kind of data and model, one package per domain behind the
contract in :mod:`nnpipe.domains.contract`, listed in :mod:`nnpipe.domains.registry`.

Nothing is imported here: importing one domain's code must not import another's.
"""
