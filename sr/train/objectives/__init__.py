"""Training objectives, one module each; importing this package registers them."""
from sr.train.objectives import difiisr, hfdiff, resshift, sinsr, upsr  # noqa: F401
from sr.train.objectives.base import OBJECTIVES, Objective, ObjectiveContext, build_objective

__all__ = ["OBJECTIVES", "Objective", "ObjectiveContext", "build_objective"]
