"""Running and keeping trials: HOME and the opened study (``session``), the RDB storage with its
heartbeats, claiming and retries (``storage``), Optuna's internals behind one module
(``records``), the one trial loop (``loop``), populations (``batches``, ``image_batches``),
outcomes and progress.
"""
