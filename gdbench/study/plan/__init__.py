"""From a spec to trials: the TOML reader, a trial's optimizer and schedule, Optuna's samplers and
pruners, the per-branch sampler and the inclusions between optimizers.

The reader sits here, above ``spec/``, because reading a spec builds every optimizer and
schedule it names once, to refuse a bad one before anything is created.
"""
