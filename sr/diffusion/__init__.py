"""ResShift-family diffusion: schedules and the residual-shifting process (no network code here)."""

from sr.diffusion.resshift import PixelUnshuffleFirstStage, ResShiftDiffusion, VQFirstStage, uncertainty_map
from sr.diffusion.schedule import (
    DIFIISR_T15,
    RESSHIFT_V3_T4,
    UPSR_T5,
    ResShiftSchedule,
    ScheduleConfig,
    exponential_sqrt_etas,
)

__all__ = [
    "DIFIISR_T15",
    "RESSHIFT_V3_T4",
    "UPSR_T5",
    "PixelUnshuffleFirstStage",
    "ResShiftDiffusion",
    "ResShiftSchedule",
    "ScheduleConfig",
    "VQFirstStage",
    "exponential_sqrt_etas",
    "uncertainty_map",
]
