"""Schedules and ResShift diffusion maths against the conformance kit's float64 / float32 goldens."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import load_json, load_pt

from sr.diffusion import (
    DIFIISR_T15,
    RESSHIFT_V3_T4,
    UPSR_T5,
    PixelUnshuffleFirstStage,
    ResShiftDiffusion,
    ResShiftSchedule,
    uncertainty_map,
)

ARITH = dict(atol=2e-6, rtol=1e-5)
VARIANTS = {
    "schedule_difiisr_sinsr_resshiftv1_T15": (DIFIISR_T15, {}),
    "schedule_resshift_v3_journal_T4": (RESSHIFT_V3_T4, {}),
    "schedule_upsr_T5": (UPSR_T5, {"input_scaling": "upsr", "model_output_unshuffle": 4}),
}
TABLES = [
    "sqrt_etas",
    "etas",
    "etas_prev",
    "alpha",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
    "posterior_variance",
    "posterior_variance_clipped",
    "posterior_log_variance_clipped",
]


def _diffusion(stem: str) -> ResShiftDiffusion:
    cfg, kwargs = VARIANTS[stem]
    return ResShiftDiffusion.from_config(cfg, **kwargs)


@pytest.mark.parametrize("stem", list(VARIANTS))
def test_schedule_tables_float64(stem):
    ref = load_json(f"{stem}.json")
    sched = ResShiftSchedule.from_config(VARIANTS[stem][0])
    assert sched.num_timesteps == ref["num_timesteps"] and sched.kappa == ref["kappa"]
    for name in TABLES:
        ours = getattr(sched, name)
        assert ours.dtype == np.float64
        np.testing.assert_allclose(ours, np.array(ref[name]), rtol=4e-15, atol=0, err_msg=name)
    for name, ours in zip(("ddim_k", "ddim_m", "ddim_j"), sched.ddim_coefficients()):
        np.testing.assert_allclose(ours, np.array(ref[name]), rtol=0, atol=4e-15, err_msg=name)
    np.testing.assert_allclose(sched.sqrt_etas * sched.kappa, ref["kappa_sqrt_etas"], rtol=4e-15)
    np.testing.assert_allclose(sched.sqrt_etas[-1] * sched.kappa, ref["prior_std_T"], rtol=4e-15)


def test_v3_schedule_has_no_sqrt_cap():
    ref = load_json("schedule_resshift_v3_journal_T4.json")
    capped = ResShiftSchedule.from_config(RESSHIFT_V3_T4.__class__(**{**RESSHIFT_V3_T4.__dict__, "sqrt_eta_cap": True}))
    np.testing.assert_allclose(capped.sqrt_etas, ref["NOT_USED_sqrt_etas_with_old_sqrt0.001_cap"], rtol=1e-14)


@pytest.mark.parametrize("stem", list(VARIANTS))
def test_forward_prior_posterior_scaling(stem):
    g, diff = load_pt(f"{stem}.pt"), _diffusion(stem)
    un = g.get("q.un")
    torch.testing.assert_close(diff.q_sample(g["q.x0"], g["q.y"], g["q.t"], g["q.noise"], un), g["q.x_t"], **ARITH)
    prior = g["prior.x_T"] if un is not None else g["prior.z_T"]
    torch.testing.assert_close(diff.prior_sample(g["q.y"], g["q.noise"], un), prior, **ARITH)
    mean, var, logvar = diff.q_posterior_mean_variance(g["q.x0"], g["q.x_t"], g["q.t"], un)
    torch.testing.assert_close(mean, g["post.mean"], **ARITH)
    torch.testing.assert_close(var, g["post.variance"], **ARITH)
    torch.testing.assert_close(logvar, g["post.log_variance"], **ARITH)
    torch.testing.assert_close(diff.scale_input(g["q.x_t"], g["q.t"]), g["scale.scaled_input"], **ARITH)


@pytest.mark.parametrize("stem", list(VARIANTS))
def test_p_mean_variance_and_ddim_step(stem):
    g, diff = load_pt(f"{stem}.pt"), _diffusion(stem)
    un = g.get("pmv.un")
    stub_out = g["pmv.model_output_rgb"] if un is not None else g["pmv.model_output"]
    seen = {}

    def stub(x, t, **kwargs):
        seen["x"], seen["t"] = x, t
        return stub_out

    out = diff.p_mean_variance(stub, g["pmv.x_t"], g["pmv.y"], g["pmv.t"], clip_denoised=False, un=un)
    torch.testing.assert_close(seen["x"], g["pmv.scaled_input"], **ARITH)
    assert torch.equal(seen["t"], g["pmv.t"])
    for key in ("pred_xstart", "mean", "variance", "log_variance"):
        torch.testing.assert_close(out[key], g[f"pmv.{key}"], **ARITH, msg=key)
    if "ddim.sample" in g:
        step = diff.ddim_sample(stub, g["pmv.x_t"], g["pmv.y"], g["pmv.t"], clip_denoised=False, un=un)
        torch.testing.assert_close(step["sample"], g["ddim.sample"], **ARITH)
        prefix = "ddim." if un is not None else "pmv.ddim_"
        kmj = diff.ddim_coefficients(g["pmv.t"], g["pmv.t"].shape)
        for name, ours in zip("kmj", kmj):
            torch.testing.assert_close(ours, g[f"{prefix}{name}_f32_as_code"], atol=2.5e-7, rtol=0)
    if "pmv.mean_clipped" in g:
        out = diff.p_mean_variance(stub, g["pmv.x_t"], g["pmv.y"], g["pmv.t"], clip_denoised=True)
        torch.testing.assert_close(out["pred_xstart"], g["pmv.pred_xstart_clipped"], **ARITH)
        torch.testing.assert_close(out["mean"], g["pmv.mean_clipped"], **ARITH)


def test_upsr_uncertainty_map_and_weighted_forward():
    g, diff = load_pt("upsr_uncertainty_cases.pt"), _diffusion("schedule_upsr_T5")
    un = uncertainty_map(g["g_y"], g["bicubic_y"], psi_max=0.1, b=0.4)
    torch.testing.assert_close(un, g["un"], **ARITH)
    stage = PixelUnshuffleFirstStage(4)
    torch.testing.assert_close(stage.encode(torch.cat([g["g_y"], g["bicubic_y"]], 1)), g["lq_cond"], atol=0, rtol=0)
    for name, full in (
        ("un", un),
        ("x0", g["x0_hr"]),
        ("y", g["bicubic_y"]),
        ("y_hat", g["g_y"]),
        ("noise", g["noise"]),
    ):
        torch.testing.assert_close(stage.encode(full), g[f"{name}_unshuffled"], **ARITH, msg=name)
    steps = g["t"]
    rep = lambda x: x.expand(len(steps), -1, -1, -1)  # noqa: E731
    x_t = diff.q_sample(
        rep(g["x0_unshuffled"]), rep(g["y_unshuffled"]), steps, rep(g["noise_unshuffled"]), rep(g["un_unshuffled"])
    )
    torch.testing.assert_close(x_t, g["x_t_unshuffled"], **ARITH)
    torch.testing.assert_close(stage.decode(x_t), g["x_t_rgb"], **ARITH)
    torch.testing.assert_close(
        diff.prior_sample(g["y_unshuffled"], g["noise_unshuffled"], g["un_unshuffled"]),
        g["prior_x_T_unshuffled"],
        **ARITH,
    )
    torch.testing.assert_close(diff.scale_input(g["x_t_unshuffled"], steps), g["scaled_x_t_unshuffled"], **ARITH)


def test_stochastic_loop_is_reproducible_and_ends_at_posterior_mean():
    diff = _diffusion("schedule_difiisr_sinsr_resshiftv1_T15")
    y = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    def model(x, t, **kwargs):
        return 0.5 * x

    runs = [
        diff.sample_loop(model, y + 1.98, y, "stochastic", generator=torch.Generator().manual_seed(5)) for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])
    one = diff.sample_loop(model, y + 1.98, y, "one_step")
    torch.testing.assert_close(one, 0.5 * diff.scale_input(y + 1.98, torch.tensor([14])))
