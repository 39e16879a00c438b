"""Deterministic, documented splits for data sets whose official release has none.

Ids are sorted, permuted with ``numpy.random.default_rng(seed)`` and cut 70 / 10 / 20 % into
train / val / test. The paper's M3FD "Set5 / Set15 / Set20" lists were never published (the
authors drew them at random): here they are the first 5 / 15 / 20 ids of a second permutation of the
test split with the same seed, so Set5 is inside Set15 inside Set20. A user's own list files win.
"""

from __future__ import annotations

import numpy as np

SPLIT_SEED = 20250301  # the paper's conference month; recorded so the lists can be regenerated
SUBSETS = {"set5": 5, "set15": 15, "set20": 20}


def deterministic_splits(ids: list[str], seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    ids = sorted(ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    n_train, n_val = int(round(0.7 * len(ids))), int(round(0.1 * len(ids)))
    shuffled = [ids[i] for i in order]
    splits = {
        "train": sorted(shuffled[:n_train]),
        "val": sorted(shuffled[n_train : n_train + n_val]),
        "test": sorted(shuffled[n_train + n_val :]),
        "all": ids,
    }
    test_order = np.random.default_rng(seed).permutation(len(splits["test"]))
    for subset, n in SUBSETS.items():
        splits[subset] = sorted(splits["test"][i] for i in test_order[:n])
    return splits
