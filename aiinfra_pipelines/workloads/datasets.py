"""The reference datasets: real data bundled with scikit-learn, so a workload runs offline.

Features are standardised with the training split's mean and spread (the test split never
leaks into them) and stored as float32, the dtype an accelerator would be fed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DATASETS = ("digits", "breast_cancer", "wine", "iris")

# Images are 8x8 for digits: the augmentation in the training workload uses the shape.
IMAGE_SHAPES = {"digits": (8, 8)}


def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets as skd

    loaders = {
        "digits": skd.load_digits,
        "breast_cancer": skd.load_breast_cancer,
        "wine": skd.load_wine,
        "iris": skd.load_iris,
    }
    if name not in loaders:
        raise ValueError(f"dataset.name: unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    bunch = loaders[name]()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """All samples of a bundled dataset, standardised over the whole set: (X float32, y int64)."""
    X, y = _raw(name)
    mean, std = X.mean(axis=0), X.std(axis=0)
    std[std == 0] = 1.0
    return ((X - mean) / std).astype(np.float32), y


@dataclass(frozen=True)
class Split:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    n_features: int
    raw_bytes: int  # bytes of the float32 feature matrix plus labels, i.e. what one epoch reads

    @property
    def train_samples(self) -> int:
        return int(self.X_train.shape[0])


def train_test_split(name: str, test_fraction: float = 0.25, seed: int = 0) -> Split:
    """A fixed, stratified split (same seed, same split), standardised with training statistics only."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: must be in (0, 1), got {test_fraction}")
    X, y = _raw(name)
    rng = np.random.default_rng(seed)
    test_idx = []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        test_idx.extend(idx[: max(1, int(round(len(idx) * test_fraction)))])
    test_mask = np.zeros(len(y), dtype=bool)
    test_mask[np.asarray(test_idx)] = True
    X_tr, X_te = X[~test_mask], X[test_mask]
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0)
    std[std == 0] = 1.0
    X_tr = ((X_tr - mean) / std).astype(np.float32)
    X_te = ((X_te - mean) / std).astype(np.float32)
    return Split(
        X_train=X_tr,
        y_train=y[~test_mask],
        X_test=X_te,
        y_test=y[test_mask],
        n_classes=int(y.max()) + 1,
        n_features=int(X.shape[1]),
        raw_bytes=int(X.shape[0] * X.shape[1] * 4 + y.shape[0] * 8),
    )
