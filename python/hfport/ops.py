"""hfport.ops: the fused kernels. Every op takes hfport.Tensor or any DLPack producer (torch,
numpy, ...) without a copy and returns hfport.Tensor; `torch.from_dlpack(out)` views the result.

>>> import hfport, torch
>>> q = k = v = torch.randn(1, 8, 128, 64)
>>> out = torch.from_dlpack(hfport.ops.attention(q, k, v, causal=True))
"""

from hfport._hfport.ops import *
