"""Training objectives, one module each; :data:`OBJECTIVES` imports them all on first use."""

from sr.train.objectives.base import OBJECTIVES, Objective, ObjectiveContext, build_objective

__all__ = ["OBJECTIVES", "Objective", "ObjectiveContext", "build_objective"]
