"""Degradations: ``(data set, degradation) -> LR``, the degradation axis of a benchmark run.

A degradation is named, with severities 1-5 (``noise@3``) or none (``bicubic``, the paper's protocol and the
default); its parameters per severity and their sources are in ``configs/degradations/<name>.yaml``, its
operator is a function of one module here (one module per concern: ``optics``, ``sampling``, ``sensor_noise``,
``output``; ``pipeline`` puts them in the physical order and runs them). Python::

    from downstream.degradations import degrade, resolve
    lr = degrade(hr, "noise@3", scale=4, seed=0, sample_id="00950")   # [C,H,W] float in [0,1]

CLI: ``python -m downstream.degradations list`` / ``apply --degradation sensor@2 IN.png OUT.png``.
"""

from __future__ import annotations

from downstream.degradations.pipeline import (
    DEGRADATIONS,
    Spec,
    degrade,
    degraded,
    list_degradations,
    parse_list,
    resolve,
)

__all__ = ["DEGRADATIONS", "Spec", "degrade", "degraded", "list_degradations", "parse_list", "resolve"]
