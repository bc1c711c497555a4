"""Reports read from the stores: the leaderboard and report files (``leaderboard``), the best
trials' figures (``figures``) and the leaderboard over seeds (``confirmed``).
"""
