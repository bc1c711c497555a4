"""What a study is: the spec's frozen dataclasses, search-space domains, the default spaces and
the objectives. Nothing here reads a file or knows Optuna's storage.
"""
