"""SinSR's one-step distillation (UPSTREAM_FACTS 3.3), in the run's diffusion state space.

* z_T = z_y + kappa sqrt(eta_T) eps; the frozen multi-step teacher runs its deterministic (DDIM,
  eta 0) trajectory from z_T over all T steps -> z0_teacher (no grad);
* L_distill = MSE(student(scale_{T-1}(z_T), T-1), z0_teacher);
* learn_xT: the student at timestep 0 on the teacher output (scaled with the t=T-1 divisor) must give
  back z_T: L_xT = MSE(student(scale_{T-1}(z0_teacher), 0), z_T);
* finetune_use_gt (weight w_gt): x_T_hat = student(scale_{T-1}(z_gt), 0) without grad;
  L_gt = MSE(student(scale_{T-1}(x_T_hat), T-1), z_gt).
Total = L_distill + L_xT + w_gt L_gt. The student starts as a copy of the teacher
(``init_student_from_teacher``). ``guidance`` (DifIISR on a SinSR base) acts on the distillation
prediction, with the gradient taken w.r.t. z_T.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from sr.checkpoint import load_into
from sr.train.objectives.base import Objective, ObjectiveContext, mse, register
from sr.weights import resolve_weights


@register("sinsr")
class SinSRObjective(Objective):
    sampling = ("one_step",)  # the student is trained at t=T-1 from the prior: one network call

    def __init__(
        self,
        ctx: ObjectiveContext,
        teacher: str | None = None,
        learn_xT: bool = True,
        finetune_use_gt: float = 1.0,
        init_student_from_teacher: bool = True,
        teacher_mode: str = "ddim",
        guidance: dict[str, Any] | None = None,
        guidance_start: int = 0,
        guidance_end: int | None = None,
    ):
        super().__init__(ctx)
        if teacher is None and not ctx.random_weights:
            raise ValueError("sinsr needs 'teacher': a trained multi-step checkpoint (path or registry name)")
        net = ctx.build_network() if ctx.build_network else copy.deepcopy(ctx.raw_model)
        if teacher is not None:
            load_into(
                net,
                resolve_weights(teacher, ctx.weights_dir, what="objective.teacher"),
                "teacher UNetModelSwin",
                keys=("ema", "state_dict", "params_ema", "params", "model"),
            )
        self.teacher = [net.to(ctx.device).eval().requires_grad_(False)]  # list: not a sub-module
        if init_student_from_teacher and teacher is not None:
            ctx.raw_model.load_state_dict(net.state_dict())
        self.learn_xT, self.w_gt, self.teacher_mode = bool(learn_xT), float(finetune_use_gt), teacher_mode
        self.set_guidance(guidance, guidance_start, guidance_end)

    @torch.no_grad()
    def teacher_x0(self, z_T: torch.Tensor, z_y: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        d = self.ctx.diffusion
        return d.sample_loop(self.teacher[0], z_T, z_y, self.teacher_mode, model_kwargs={"lq": lr})

    def student_terms(self, batch, step):
        """(loss, logs, pred_distill, z_T, z0_teacher, z_gt, extra) — shared with HF-Diff."""
        d, lr, hr, model = self.ctx.diffusion, batch["lr"], batch["hr"], self.ctx.model
        z_y, z_gt = self.encode(self.upsample(lr)), self.encode(hr)
        b, last = z_y.shape[0], d.num_timesteps - 1
        t_last, t0 = self.t_full(b, last), self.t_full(b, 0)
        z_T = d.prior_sample(z_y, torch.randn_like(z_y))
        z0_teacher = self.teacher_x0(z_T, z_y, lr)
        guided = self.guided(step)
        x_in = z_T.clone().requires_grad_(True) if guided and self.guidance.needs_input_grad else z_T
        pred = self.net(model, x_in, t_last, lr)
        logs: dict[str, float] = {}
        extra = pred.new_zeros(())
        if guided:
            pred, extra = self.guide(x_in, t_last, pred, hr, logs)
        loss = mse(pred, z0_teacher)
        logs["distill"] = float(loss.detach())
        if self.learn_xT:
            l_xt = mse(self.net(model, z0_teacher, t0, lr, scale_t=t_last), z_T)
            logs["xT"] = float(l_xt.detach())
            loss = loss + l_xt
        gt_pred = None
        if self.w_gt > 0:
            with torch.no_grad():
                x_T_hat = self.net(model, z_gt, t0, lr, scale_t=t_last)
            gt_pred = self.net(model, x_T_hat, t_last, lr)
            l_gt = mse(gt_pred, z_gt)
            logs["gt"] = float(l_gt.detach())
            loss = loss + self.w_gt * l_gt
        return loss + extra, logs, gt_pred, z_gt

    def forward(self, batch, step):
        loss, logs, _, _ = self.student_terms(batch, step)
        return loss, logs
