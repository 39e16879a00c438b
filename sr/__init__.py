"""SR methods behind one interface.

>>> import sr
>>> m = sr.load_method("bicubic")
>>> y = m.upscale(x)   # x: float32 [B,C,h,w] in [0,1]
"""

from sr.base import SRMethod
from sr.registry import list_methods, load_method, method_spec

__all__ = ["SRMethod", "list_methods", "load_method", "method_spec"]
