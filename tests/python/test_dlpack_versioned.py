"""DLPack 1.x both ways and numpy (issue 19, point 1).

The capsules are read with ctypes from the DLPack specification's struct layout, not through
hfport, so a wrong version, a wrong flag or a legacy capsule where a versioned one is due fails
here. numpy and torch are the consumers and producers a researcher uses.
"""

from __future__ import annotations

import ctypes
import gc
import time

import hfport
import ml_dtypes
import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import random_tensor
from cuda_testing import needs_cuda
from hfport.errors import DLPackError

READ_ONLY, IS_COPIED = 1 << 0, 1 << 1
KDL_CPU, KDL_CUDA, KDL_OPENCL = 1, 2, 4

# Function objects of our own: ctypes.pythonapi's are shared, and other test files set their
# argtypes differently.
_python = ctypes.PyDLL(None)
_get_pointer = _python.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_get_name = _python.PyCapsule_GetName
_get_name.restype = ctypes.c_char_p
_get_name.argtypes = [ctypes.py_object]


class DLManagedTensorVersioned(ctypes.Structure):
    # The head of the struct, as the DLPack 1.x specification lays it out.
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32),
                ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p),
                ("flags", ctypes.c_uint64), ("data", ctypes.c_void_p),
                ("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32),
                ("ndim", ctypes.c_int32)]


def capsule_name(capsule) -> str:
    return _get_name(capsule).decode()


def versioned_head(capsule) -> DLManagedTensorVersioned:
    """A copy of the struct's head, read while `capsule` (which may be a temporary) lives."""
    assert capsule_name(capsule) == "dltensor_versioned"
    address = _get_pointer(capsule, b"dltensor_versioned")
    size = ctypes.sizeof(DLManagedTensorVersioned)
    return DLManagedTensorVersioned.from_buffer_copy(ctypes.string_at(address, size))


@pytest.fixture
def model_file(tmp_path):
    written = {"w": random_tensor(torch.float32, (384, 384)),
               "e": random_tensor(torch.bfloat16, (40, 24)),
               "i": random_tensor(torch.int64, (9,))}
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(written, path)
    return path, written


def test_capsule_kind_follows_max_version(model_file):
    path, _ = model_file
    t = hfport.open(path)["w"]
    assert capsule_name(t.__dlpack__()) == "dltensor"
    assert capsule_name(t.__dlpack__(max_version=(0, 8))) == "dltensor"
    for asked in [(1, 0), (1, 1), (1, 7), (2, 0)]:
        head = versioned_head(t.__dlpack__(max_version=asked))
        assert (head.major, head.minor) == (1, 1)
        assert head.data == t.data_ptr
        assert (head.device_type, head.device_id, head.ndim) == (KDL_CPU, 0, 2)
        assert head.flags == 0, "a mapped checkpoint is writable (MAP_PRIVATE copy-on-write)"


def test_copy_true_copies_and_says_so(model_file):
    path, written = model_file
    t = hfport.open(path)["w"]
    capsule = t.__dlpack__(max_version=(1, 0), copy=True)
    head = versioned_head(capsule)
    assert head.flags == IS_COPIED
    assert head.data != t.data_ptr
    copy = hfport.from_dlpack(capsule)
    assert copy.data_ptr == head.data
    assert torch.equal(torch.from_dlpack(copy), written["w"])
    # The legacy kind copies too; it has no flag to say so.
    legacy = hfport.from_dlpack(t.__dlpack__(copy=True))
    assert legacy.data_ptr != t.data_ptr
    assert torch.equal(torch.from_dlpack(legacy), written["w"])


def test_copy_false_and_foreign_devices_raise_buffer_error(model_file):
    path, _ = model_file
    t = hfport.open(path)["w"]
    with pytest.raises(BufferError, match=r"dl_device=\(4, 0\).*CPU \(1\) or CUDA \(2\)"):
        t.__dlpack__(max_version=(1, 0), dl_device=(KDL_OPENCL, 0))
    with pytest.raises(BufferError, match="copy=False.*needs a copy"):
        t.__dlpack__(max_version=(1, 0), dl_device=(KDL_CUDA, 0), copy=False)
    # Its own device is no copy.
    head = versioned_head(t.__dlpack__(max_version=(1, 0), dl_device=(KDL_CPU, 0), copy=False))
    assert head.data == t.data_ptr and head.flags == 0


def test_read_only_memory_crosses_read_only():
    source = np.arange(24, dtype=np.float32).reshape(4, 6)
    source.flags.writeable = False
    t = hfport.from_dlpack(source)  # numpy refuses a legacy capsule for a read-only array
    assert t.read_only
    assert t.data_ptr == source.ctypes.data
    assert versioned_head(t.__dlpack__(max_version=(1, 0))).flags == READ_ONLY
    view = np.from_dlpack(t)
    assert not view.flags.writeable
    assert np.shares_memory(view, source)
    with pytest.raises(BufferError, match="read-only.*max_version=\\(1, 0\\).*copy=True"):
        t.__dlpack__()
    # A copy is the consumer's own, writable memory.
    copy = hfport.from_dlpack(t.__dlpack__(copy=True))
    assert not copy.read_only
    assert np.from_dlpack(copy).flags.writeable
    # Slices keep the flag.
    assert t[1:, ::2].read_only


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "legacy"])
def test_imports_both_capsule_kinds_from_torch_and_numpy(versioned):
    kwargs = {"max_version": (1, 0)} if versioned else {}
    expected = "dltensor_versioned" if versioned else "dltensor"
    source = random_tensor(torch.float32, (6, 5))
    capsule = source.__dlpack__(**kwargs)
    assert capsule_name(capsule) == expected
    t = hfport.from_dlpack(capsule)
    assert capsule_name(capsule) == "used_" + expected
    assert t.data_ptr == source.data_ptr() and not t.read_only
    source[2, 3] = 99.0
    assert float(t[2, 3]) == 99.0

    array = np.arange(10, dtype=np.int16)
    capsule = array.__dlpack__(**kwargs)
    assert capsule_name(capsule) == expected
    t = hfport.from_dlpack(capsule)
    assert t.data_ptr == array.ctypes.data and t.dtype == "I16"
    with pytest.raises(DLPackError, match="consumed once"):
        hfport.from_dlpack(capsule)


def mapped(path) -> bool:
    target = str(path.resolve())
    return any(line.endswith(" " + target) for line in
               open("/proc/self/maps").read().splitlines())


def test_versioned_capsule_holds_the_mapping_until_freed(model_file):
    path, _ = model_file
    ck = hfport.open(path)
    t = ck["w"]
    capsule = t.__dlpack__(max_version=(1, 0))
    assert capsule_name(capsule) == "dltensor_versioned"
    del ck, t
    gc.collect()
    assert mapped(path), "the capsule's tensor lost its storage"
    del capsule  # never consumed: its destructor runs the deleter, which releases the storage
    gc.collect()
    assert not mapped(path), "an unconsumed versioned capsule leaked its tensor"


def test_numpy_from_dlpack_is_writable_and_shares_the_mapping(model_file):
    path, _ = model_file
    ck = hfport.open(path)
    array = np.from_dlpack(ck["w"])
    assert array.flags.writeable
    assert array.ctypes.data == ck["w"].data_ptr
    array[0, 0] = 1234.5
    assert float(ck["w"][0, 0]) == 1234.5  # the same (private) pages


def test_asarray_is_zero_copy_and_fast(model_file):
    path, written = model_file
    t = hfport.open(path)["w"]
    start = time.perf_counter()
    array = np.asarray(t)
    elapsed = time.perf_counter() - start
    # Before __array__, numpy built an object array of 147456 0-d Tensors (about 11 s).
    assert elapsed < 0.5, f"np.asarray of a 384x384 tensor took {elapsed:.2f} s"
    assert array.dtype == np.float32 and array.shape == (384, 384)
    assert array.ctypes.data == t.data_ptr
    assert np.shares_memory(array, np.asarray(t))
    assert np.array_equal(array, written["w"].numpy())


def test_asarray_of_bf16_is_an_ml_dtypes_view(model_file):
    path, written = model_file
    t = hfport.open(path)["e"]
    array = np.asarray(t)
    assert array.dtype == ml_dtypes.bfloat16
    assert array.ctypes.data == t.data_ptr
    assert np.array_equal(array.astype(np.float32), written["e"].float().numpy())
    strided = np.asarray(t[::3, 1::5])
    assert np.array_equal(strided.astype(np.float32), written["e"][::3, 1::5].float().numpy())


def test_array_copy_and_dtype_follow_numpy_2(model_file):
    path, written = model_file
    t = hfport.open(path)["w"]
    same = np.asarray(t, copy=False)
    assert same.ctypes.data == t.data_ptr
    copied = np.array(t, copy=True)
    assert not np.shares_memory(copied, same)
    assert np.array_equal(copied, written["w"].numpy())
    wide = np.asarray(t, dtype=np.float64)
    assert wide.dtype == np.float64
    assert np.array_equal(wide, written["w"].double().numpy())
    with pytest.raises(ValueError, match="F32 tensor as float64 needs a copy"):
        np.asarray(t, dtype=np.float64, copy=False)
    ints = np.asarray(hfport.open(path)["i"])
    assert ints.dtype == np.int64 and ints.tolist() == written["i"].tolist()


@needs_cuda
def test_cuda_tensors_cross_to_numpy_and_print_their_device():
    source = random_tensor(torch.float32, (3, 4)).cuda()
    t = hfport.from_dlpack(source)
    head = versioned_head(t.__dlpack__(max_version=(1, 0), stream=-1))
    assert (head.device_type, head.flags) == (KDL_CUDA, 0)
    # To the host on request: a copy, flagged as one.
    head = versioned_head(t.__dlpack__(max_version=(1, 0), dl_device=(KDL_CPU, 0)))
    assert (head.device_type, head.flags) == (KDL_CPU, IS_COPIED)
    array = np.asarray(t)
    assert np.array_equal(array, source.cpu().numpy())
    with pytest.raises(ValueError, match="cuda:0.*needs a copy"):
        np.asarray(t, copy=False)
    text = repr(t)
    assert text.endswith(", device='cuda:0', dtype=float32)")
    assert t.to("cpu", torch.float16).dtype == "F16"
    assert t.to(torch.bfloat16).device == "cuda:0"


def test_ops_refuse_to_write_into_read_only_memory():
    x = np.linspace(-2, 2, 12, dtype=np.float32)
    out = np.zeros(12, dtype=np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="silu: out is read-only memory"):
        hfport.ops.silu(x, out=out)
    assert not out.any()
    writable = np.zeros(12, dtype=np.float32)
    hfport.ops.silu(x, out=writable)
    assert np.allclose(writable, x / (1 + np.exp(-x)), rtol=1e-6)
