"""CUDA tensors from Python: to_device, the device string, DLPack with torch on CUDA (zero-copy
both ways, the `stream` handshake on a non-default torch stream).

The first tests run everywhere: where this build has no CUDA or the machine no device, moving a
tensor to "cuda" raises DeviceError saying which of the two is missing. The rest need
torch.cuda.is_available() and hfport.cuda_device_count() > 0 and skip otherwise.
"""

from __future__ import annotations

import hfport
import numpy as np
import pytest
import torch
from hfport.errors import DeviceError, DLPackError

HAS_CUDA = hfport.cuda_device_count() > 0 and torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(
    not HAS_CUDA,
    reason=f"needs a CUDA device visible to both hfport (sees {hfport.cuda_device_count()}) and "
    f"torch (is_available() is {torch.cuda.is_available()})",
)


def host_tensor() -> hfport.Tensor:
    return hfport.from_dlpack(np.arange(12, dtype=np.float32).reshape(3, 4))


@pytest.mark.skipif(hfport.cuda_device_count() > 0, reason="a CUDA device is visible here")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_to_cuda_without_a_device_says_why(device):
    expected = f"cuda:{device[5:] or 0}"
    with pytest.raises(DeviceError) as info:
        host_tensor().to_device(device)
    message = str(info.value)
    assert "to_device" in message and expected in message
    if hfport.built_with_cuda():
        assert "no CUDA device is visible" in message
    else:
        assert "compiled without" in message and "HFPORT_CUDA=OFF" in message


def test_device_names():
    t = host_tensor()
    assert t.device == "cpu"
    assert t.__dlpack_device__() == (1, 0)
    assert t.to_device("cpu") is not None
    assert t.to_device("cpu").data_ptr == t.data_ptr  # already there: no copy
    for bad in ["gpu", "cuda:", "cuda:-1", "CUDA", "cuda:0 "]:
        with pytest.raises(DeviceError, match="expected 'cpu', 'cuda' or 'cuda:N'"):
            t.to_device(bad)


def test_cpu_dlpack_arguments():
    t = host_tensor()
    # copy=True gives new memory; dl_device=(1, 0) is where it already is; CUDA needs a device.
    assert torch.from_dlpack(t.__dlpack__(copy=True)).data_ptr() != t.data_ptr
    assert torch.from_dlpack(t.__dlpack__(dl_device=(1, 0))).data_ptr() == t.data_ptr
    with pytest.raises(DLPackError, match="copy=False"):
        t.__dlpack__(dl_device=(2, 0), copy=False)
    with pytest.raises(DLPackError, match="CPU \\(1\\) or CUDA \\(2\\)"):
        t.__dlpack__(dl_device=(4, 0))
    if hfport.cuda_device_count() == 0:
        with pytest.raises(DeviceError, match="cuda:0"):
            t.__dlpack__(dl_device=(2, 0))


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64, torch.uint8])
def test_round_trip_through_the_device(dtype):
    src = (torch.arange(3 * 5 * 7) * 7 % 251).to(dtype).reshape(3, 5, 7)
    on_gpu = hfport.from_dlpack(src).to_device("cuda")
    assert on_gpu.device == "cuda:0"
    assert on_gpu.__dlpack_device__() == (2, 0)
    back = torch.from_dlpack(on_gpu.to_device("cpu"))
    assert torch.equal(back, src)
    as_torch = torch.from_dlpack(on_gpu)
    assert as_torch.device == torch.device("cuda:0")
    assert as_torch.data_ptr() == on_gpu.data_ptr
    assert torch.equal(as_torch.cpu(), src)


@needs_cuda
def test_torch_cuda_tensor_crosses_without_a_copy():
    x = torch.randn(33, 17, device="cuda")
    h = hfport.from_dlpack(x)
    assert h.device == "cuda:0"
    assert h.data_ptr == x.data_ptr()
    y = torch.from_dlpack(h)
    assert y.data_ptr() == x.data_ptr()
    y.mul_(2)  # one memory: torch sees its own write through hfport
    assert torch.equal(torch.from_dlpack(h.to_device("cpu")), x.cpu())
    # Host-only operations refuse device memory.
    with pytest.raises(DeviceError, match="CUDA"):
        h.to("float16")
    with pytest.raises(DeviceError, match="CUDA"):
        hfport.tensor_stats([h])


@needs_cuda
def test_import_on_a_non_default_torch_stream_is_ordered_before_hfport():
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)  # keep the side stream busy so a missing wait would show
        x = torch.full((1 << 20,), 3.0, device="cuda")
        h = hfport.from_dlpack(x)  # torch makes the legacy stream wait for `side`
    got = torch.from_dlpack(h.to_device("cpu"))
    assert bool((got == 3.0).all())


@needs_cuda
def test_export_to_a_non_default_torch_stream_waits_for_hfport():
    src = torch.arange(1 << 22, dtype=torch.float32)
    on_gpu = hfport.from_dlpack(src).to_device("cuda")  # queued on hfport's stream
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        # torch passes stream=side.cuda_stream; hfport records an event and makes side wait.
        y = torch.from_dlpack(on_gpu)
        total = y.sum()
    side.synchronize()
    assert float(total) == float(src.double().sum())
    for code in (None, 1, 2, -1, side.cuda_stream):
        capsule = on_gpu.__dlpack__(stream=code)
        assert torch.from_dlpack(capsule).data_ptr() == on_gpu.data_ptr
    for bad in (0, -2):
        with pytest.raises(DLPackError, match="disallows"):
            on_gpu.__dlpack__(stream=bad)


@needs_cuda
def test_dlpack_device_requests_copy():
    on_gpu = hfport.from_dlpack(torch.arange(10, dtype=torch.int32)).to_device("cuda")
    to_host = torch.from_dlpack(on_gpu.__dlpack__(dl_device=(1, 0)))
    assert to_host.device.type == "cpu" and to_host.tolist() == list(range(10))
    copied = torch.from_dlpack(on_gpu.__dlpack__(copy=True))
    assert copied.data_ptr() != on_gpu.data_ptr
    with pytest.raises(DLPackError, match="copy=False"):
        on_gpu.__dlpack__(dl_device=(1, 0), copy=False)
