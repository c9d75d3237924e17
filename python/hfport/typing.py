"""Types for annotating code that calls hfport, as numpy.typing is for numpy.

Every op and model takes its tensors as "any DLPack tensor": an hfport.Tensor, a torch.Tensor, a
numpy array, a JAX or CuPy array, ... anything with the two methods of the DLPack Python protocol
(the array API standard's `__dlpack__` and `__dlpack_device__`). The stubs of hfport._hfport name
this protocol for those parameters, so mypy and IDEs accept all of them and refuse a list.

>>> import numpy as np
>>> from hfport.typing import SupportsDLPack
>>> isinstance(np.zeros(3), SupportsDLPack)
True
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["SupportsDLPack"]


@runtime_checkable
class SupportsDLPack(Protocol):
    """An object that exports its memory through DLPack. Producers take keyword arguments
    (stream, max_version, dl_device, copy) that hfport passes as the specification says; the
    protocol asks only that the method can be called, as every producer's can."""

    def __dlpack__(self) -> Any: ...

    def __dlpack_device__(self) -> tuple[int, int]: ...
