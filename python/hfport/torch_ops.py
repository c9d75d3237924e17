"""hfport's kernels as PyTorch custom ops, so torch.compile traces through them.

Importing this module registers each op under ``torch.ops.hfport`` with ``torch.library``: a real
implementation (the hfport kernel, its output viewed by DLPack without a copy) and a fake one that
gives the output's shape, dtype and device from the inputs' alone. A function that calls them
compiles with ``torch.compile(fullgraph=True)``: no graph break, no warning asking to register a
custom op.

>>> import hfport.torch_ops as hops
>>> @torch.compile(fullgraph=True)
... def block(x, w, q, k, v):
...     return hops.attention(q, k, v, causal=True), hops.rms_norm(x, w, 1e-6)

The ops are functional (they return new tensors and never write their inputs): the ``out=`` and
``inplace=`` forms of hfport.ops are left out, as are the forms returning extra state (use
hfport.ops directly for those). Arguments keep hfport.ops' names and meanings; see its docstrings.
No autograd formula is registered: these are inference kernels.
"""

# No `from __future__ import annotations`: torch.library reads the schema from real annotations.

import torch
from torch.utils.dlpack import from_dlpack

from hfport import ops

Tensor = torch.Tensor


def _torch(result: object) -> torch.Tensor:
    return from_dlpack(result)


@torch.library.custom_op("hfport::attention", mutates_args=())
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
              scale: float | None = None, attn_mask: torch.Tensor | None = None,
              key_padding_mask: torch.Tensor | None = None,
              sliding_window: int | None = None, layout: str = "bhsd") -> torch.Tensor:
    """hfport.ops.attention: [B, H, Sq, D] ("bhsd") or [B, Sq, H, D] ("bshd") out, q's dtype."""
    return _torch(ops.attention(q, k, v, causal=causal, scale=scale, attn_mask=attn_mask,
                                key_padding_mask=key_padding_mask,
                                sliding_window=sliding_window, layout=layout))


@attention.register_fake
def _(q: Tensor, k: Tensor, v: Tensor, causal: bool = False, scale: float | None = None,
      attn_mask: Tensor | None = None, key_padding_mask: Tensor | None = None,
      sliding_window: int | None = None, layout: str = "bhsd") -> Tensor:
    return q.new_empty(q.shape)


@torch.library.custom_op("hfport::rms_norm", mutates_args=())
def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
             add_unit_offset: bool = False) -> torch.Tensor:
    """hfport.ops.rms_norm over the last dim (without the residual form)."""
    return _torch(ops.rms_norm(x, weight, eps, add_unit_offset=add_unit_offset))


@rms_norm.register_fake
def _(x: Tensor, weight: Tensor, eps: float = 1e-6, add_unit_offset: bool = False) -> Tensor:
    return x.new_empty(x.shape)


@torch.library.custom_op("hfport::layer_norm", mutates_args=())
def layer_norm(x: torch.Tensor, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """hfport.ops.layer_norm over the last dim."""
    return _torch(ops.layer_norm(x, weight, bias, eps))


@layer_norm.register_fake
def _(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
      eps: float = 1e-5) -> Tensor:
    return x.new_empty(x.shape)


@torch.library.custom_op("hfport::linear", mutates_args=())
def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           activation: str | None = None) -> torch.Tensor:
    """hfport.ops.linear: act(x @ weight.T + bias), [..., out] in x's dtype."""
    return _torch(ops.linear(x, weight, bias, activation=activation))


@linear.register_fake
def _(x: Tensor, weight: Tensor, bias: Tensor | None = None,
      activation: str | None = None) -> Tensor:
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


@torch.library.custom_op("hfport::gelu", mutates_args=())
def gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """hfport.ops.gelu: exact ("none") or "tanh", as torch's."""
    return _torch(ops.gelu(x, approximate))


@torch.library.custom_op("hfport::silu", mutates_args=())
def silu(x: torch.Tensor) -> torch.Tensor:
    """hfport.ops.silu."""
    return _torch(ops.silu(x))


@torch.library.custom_op("hfport::swiglu", mutates_args=())
def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """hfport.ops.swiglu: silu(gate) * up."""
    return _torch(ops.swiglu(gate, up))


@gelu.register_fake
def _(x: Tensor, approximate: str = "none") -> Tensor:
    return x.new_empty(x.shape)


@silu.register_fake
def _(x: Tensor) -> Tensor:
    return x.new_empty(x.shape)


@swiglu.register_fake
def _(gate: Tensor, up: Tensor) -> Tensor:
    return gate.new_empty(gate.shape)


@torch.library.custom_op("hfport::rope", mutates_args=())
def rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
         interleaved: bool = False, rotary_dim: int | None = None,
         layout: str = "bhsd") -> tuple[torch.Tensor, torch.Tensor]:
    """hfport.ops.rope, out of place: (q rotated, k rotated)."""
    q_out, k_out = ops.rope(q, k, cos, sin, interleaved=interleaved, rotary_dim=rotary_dim,
                            layout=layout)
    return _torch(q_out), _torch(k_out)


@rope.register_fake
def _(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor, interleaved: bool = False,
      rotary_dim: int | None = None, layout: str = "bhsd") -> tuple[Tensor, Tensor]:
    return q.new_empty(q.shape), k.new_empty(k.shape)


@torch.library.custom_op("hfport::causal_conv1d", mutates_args=())
def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  activation: str | None = None) -> torch.Tensor:
    """hfport.ops.causal_conv1d: x [batch, dim, L] -> [batch, dim, L]."""
    return _torch(ops.causal_conv1d(x, weight, bias, activation))


@causal_conv1d.register_fake
def _(x: Tensor, weight: Tensor, bias: Tensor | None = None,
      activation: str | None = None) -> Tensor:
    return x.new_empty(x.shape)


@torch.library.custom_op("hfport::selective_scan", mutates_args=())
def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, D: torch.Tensor | None = None,
                   z: torch.Tensor | None = None, delta_bias: torch.Tensor | None = None,
                   delta_softplus: bool = False) -> torch.Tensor:
    """hfport.ops.selective_scan: y [batch, dim, L] in u's dtype (without the last state)."""
    return _torch(ops.selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus))


@selective_scan.register_fake
def _(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
      z: Tensor | None = None, delta_bias: Tensor | None = None,
      delta_softplus: bool = False) -> Tensor:
    return u.new_empty(u.shape)


__all__ = ["attention", "causal_conv1d", "gelu", "layer_norm", "linear", "rms_norm", "rope",
           "selective_scan", "silu", "swiglu"]
