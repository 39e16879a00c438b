"""Training of ResShift-family SR models (ResShift, SinSR, DifIISR, UPSR, HF-Diff): ``python -m sr.train``."""
