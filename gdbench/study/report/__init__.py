"""Reports read from the stores: the leaderboard and report files (``leaderboard``), Optuna's
plots per optimizer (``optuna_plots``), the best trial of each optimizer and the learning-rate
sensitivity plot (``by_optimizer``), the best trials' figures (``figures``) and the
leaderboard over seeds (``confirmed``).
"""
