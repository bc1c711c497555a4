"""A Keras task of the user's: an MLP on scikit-learn's breast-cancer data set.

Data: `sklearn.datasets.load_breast_cancer` (569 tumours, 30 features, malignant or
benign; shipped with scikit-learn, no download), standardized with the training rows'
means and deviations. Test: a fixed hold-out of 100 rows; validation: a fifth of the
other 469, drawn by the task's seed. Model: 30 inputs → `hidden` ReLU units → 2 logits,
trained on gdbench's default loss (softmax cross-entropy, with accuracy), so that its
trials train in populations as `digits_mlp`'s. `studies/byo_breast_cancer.toml` studies it.

Source: Street, Wolberg & Mangasarian, "Nuclear feature extraction for breast tumor
diagnosis", IS&T/SPIE (1993); the UCI Wisconsin diagnostic breast-cancer data.
"""

import keras
import numpy as np
from sklearn.datasets import load_breast_cancer

import gdbench.tasks

TEST_ROWS = 100


def build_model(*, hidden=16):
    """30 standardized features → `hidden` ReLU units → 2 logits."""
    return keras.Sequential([
        keras.Input((30,)),
        keras.layers.Dense(hidden, activation="relu"),
        keras.layers.Dense(2),
    ])


def data():
    """The training rows and a fixed test hold-out (the same for every seed)."""
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    test, train = order[:TEST_ROWS], order[TEST_ROWS:]
    mean, scale = x[train].mean(axis=0), x[train].std(axis=0)
    x = (x - mean) / scale
    return {"train": (x[train], y[train]), "test": (x[test], y[test])}


BreastCancer = gdbench.tasks.keras_task(build_model, data, epochs=10)
