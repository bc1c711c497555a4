"""What finished studies say: each optimizer's best rerun over seeds (``confirm``,
``confirm_target``), budget-matched comparisons (``budgets``), performance profiles
(``profiles``), the protocol note (``protocol``) and statistics over seeds (``stats``).
"""
