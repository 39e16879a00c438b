"""DifIISR (paper section 4, supplementary Algorithm 1): a ResShift-family model trained in two stages.

Stage 1, iterations ``[0, lambda_t)``: the base objective without guidance. Stage 2,
``[lambda_t, lambda_T)``: guidance g = M(x0) on the decoded prediction, applied by gradient injection
(``mode: inject`` terms, the paper's nabla-L) and/or added to the loss (``mode: sum``, Sigma-L).
Inject puts eq. 9's correction on the x0 *target*, so the network's own output (all that inference
has: no HR there) learns the guided estimate. Algorithm 1 as printed puts it on the prediction, which
trains the output up the guidance gradient (:mod:`sr.guidance.inject`, "Which side of the loss").
The paper trains 200K + 50K iterations; the public code has no training loop (UPSTREAM_FACTS 1.5),
so the base objective is selectable: ``resshift`` (Algorithm 1 as written: the plain diffusion
loss at a random t) or ``sinsr`` (the one-step distillation the released model's inference matches).
``lambda_t`` = ``guidance_start``; ``lambda_T`` = ``guidance_end`` (default: the run's last iteration).
A run may also start at stage 2 from a stage-1 checkpoint (``model.init_from``, ``guidance_start: 0``).
"""

from __future__ import annotations

from typing import Any

from sr.errors import ConfigError
from sr.train.objectives.base import Objective, ObjectiveContext, register
from sr.train.objectives.resshift import ResShiftObjective
from sr.train.objectives.sinsr import SinSRObjective

_BASES = {"resshift": ResShiftObjective, "sinsr": SinSRObjective}


@register("difiisr")
class DifIISRObjective(Objective):
    @classmethod
    def sampling_modes(cls, options):
        """As its base objective trains (``resshift``: multi-step; ``sinsr``: one step)."""
        base = _BASES.get(options.get("base", "resshift"))
        return base.sampling_modes(dict(options.get("base_options") or {})) if base else cls.sampling

    def __init__(
        self,
        ctx: ObjectiveContext,
        guidance: dict[str, Any] | None = None,
        guidance_start: int = 0,
        guidance_end: int | None = None,
        base: str = "resshift",
        base_options: dict[str, Any] | None = None,
    ):
        super().__init__(ctx)
        if base not in _BASES:
            raise ConfigError(f"objective difiisr: base must be one of {sorted(_BASES)}, got {base!r}")
        self.base = _BASES[base](
            ctx, guidance=guidance, guidance_start=guidance_start, guidance_end=guidance_end, **(base_options or {})
        )
        self.guidance = self.base.guidance

    @property
    def flags(self):
        return self.base.flags

    def guided(self, step: int) -> bool:
        return self.base.guided(step)

    def forward(self, batch, step):
        loss, logs = self.base(batch, step)
        logs["guided"] = float(self.guided(step))
        return loss, logs
