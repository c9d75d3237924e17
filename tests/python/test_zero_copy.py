"""Zero copy and lifetime: exported tensors point into the file mapping at the file's own offsets,
cost no resident memory until read, keep the mapping alive after the Checkpoint is gone, and a
write into one lands in a private page, never in the file.

The mapping is observed from outside hfport, in /proc/self/maps and /proc/self/status.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import hfport
import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import assert_bit_exact, random_tensor, read_header

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc/self/maps and /proc/self/status")


def mappings_of(path: Path) -> list[tuple[int, int, int]]:
    """(start, end, file offset) of every region of this process that maps `path`."""
    target = str(Path(path).resolve())
    regions = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == target:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            regions.append((start, end, int(fields[2], 16)))
    return regions


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def checkpoint_file(tmp_path):
    written = {
        "embed": random_tensor(torch.bfloat16, (64, 48)),
        "proj.weight": random_tensor(torch.float32, (33, 17)),
        "proj.bias": random_tensor(torch.float16, (17,)),
        "steps": random_tensor(torch.int64, (5,)),
        "mask": random_tensor(torch.bool, (7, 3)),
        "scale": random_tensor(torch.float64, ()),
    }
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(written, path)
    return path, written


def test_exports_point_into_the_mapping_at_file_offsets(checkpoint_file):
    path, written = checkpoint_file
    ck = hfport.open(path)
    header_size, header = read_header(path)
    regions = mappings_of(path)
    assert regions, "the file is not mapped"

    pointers = {}
    for name in written:
        view = ck[name]
        ptr = view.data_ptr
        assert torch.from_dlpack(view).data_ptr() == ptr
        assert view.numpy().ctypes.data == ptr
        begin, end = header[name]["data_offsets"]
        inside = [r for r in regions if r[0] <= ptr and ptr + (end - begin) <= r[1]]
        assert len(inside) == 1, f"{name} at {ptr:#x} is outside the mapping {regions}"
        start, _, file_offset = inside[0]
        assert ptr - start + file_offset == 8 + header_size + begin
        pointers[name] = (ptr, begin)
    for a, (ptr_a, begin_a) in pointers.items():
        for b, (ptr_b, begin_b) in pointers.items():
            assert ptr_a - ptr_b == begin_a - begin_b, (a, b)


def test_one_gigabyte_file_costs_no_resident_memory(tmp_path):
    """A sparse 1 GiB file, opened and every tensor exported: RSS barely moves until data is
    read, and then it grows by what was read (so the measurement can see a copy)."""
    count, rows, cols = 16, 4096, 4096  # 16 x 64 MiB of F32
    tensor_bytes = rows * cols * 4
    header = {f"layer.{i:02d}": {"dtype": "F32", "shape": [rows, cols],
                                 "data_offsets": [i * tensor_bytes, (i + 1) * tensor_bytes]}
              for i in range(count)}
    raw = json.dumps(header).encode()
    path = tmp_path / "big.safetensors"
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        f.truncate(8 + len(raw) + count * tensor_bytes)
    assert path.stat().st_size - 8 - len(raw) == 2**30

    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        import torch
        import hfport

        def rss():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024

        before = rss()
        ck = hfport.open(sys.argv[1])
        exported = [torch.from_dlpack(ck[name]) for name in ck]
        arrays = [np.from_dlpack(ck[name]) for name in ck]
        shapes = [list(t.shape) for t in exported]
        opened = rss()
        assert float(exported[3].sum()) == 0.0  # reads all 64 MiB of one tensor
        touched = rss()
        print(json.dumps({"before": before, "opened": opened, "touched": touched,
                          "bytes": sum(t.numel() * t.element_size() for t in exported),
                          "arrays": len(arrays), "shapes": shapes}))
    """)
    result = subprocess.run([sys.executable, "-c", script, str(path)], check=False,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    m = json.loads(result.stdout)
    assert m["bytes"] == 2**30
    assert m["arrays"] == count
    assert m["shapes"] == [[rows, cols]] * count
    assert m["opened"] - m["before"] < 16 * 2**20, m
    assert m["touched"] - m["opened"] > tensor_bytes // 2, m


def test_mapping_outlives_the_checkpoint_while_a_view_lives(checkpoint_file):
    path, written = checkpoint_file
    ck = hfport.open(path)
    exported = torch.from_dlpack(ck["proj.weight"])
    view = ck["embed"]
    part = ck.get_slice("embed")[3:, ::5]
    array = ck["steps"].numpy()
    del ck
    gc.collect()

    assert mappings_of(path), "the mapping went away while views of it live"
    assert_bit_exact(exported, written["proj.weight"])
    assert_bit_exact(torch.from_dlpack(view), written["embed"])
    assert_bit_exact(torch.from_dlpack(part), written["embed"][3:, ::5])
    assert array.tobytes() == written["steps"].numpy().tobytes()

    del exported, view, part
    gc.collect()
    assert mappings_of(path), "the numpy array still views the mapping"
    assert array.tolist() == written["steps"].tolist()
    del array
    gc.collect()
    assert mappings_of(path) == [], "the mapping outlived every view of it"


def test_writes_stay_in_memory_and_never_reach_the_file(checkpoint_file):
    path, written = checkpoint_file
    digest = sha256(path)
    ck = hfport.open(path)
    weight = torch.from_dlpack(ck["proj.weight"])
    weight.mul_(-2.0).add_(0.5)
    steps = torch.from_dlpack(ck["steps"])
    steps[2] = 123456789
    expected_weight = written["proj.weight"] * -2.0 + 0.5
    expected_steps = written["steps"].clone()
    expected_steps[2] = 123456789

    assert sha256(path) == digest
    assert_bit_exact(torch.from_dlpack(ck["proj.weight"]), expected_weight)
    assert np.array_equal(ck["proj.weight"].numpy(), expected_weight.numpy())
    assert_bit_exact(torch.from_dlpack(ck.get_slice("proj.weight")[4]), expected_weight[4])
    assert ck["steps"].numpy().tolist() == expected_steps.tolist()

    fresh = hfport.open(path)  # its own private mapping: the file as written
    assert_bit_exact(torch.from_dlpack(fresh["proj.weight"]), written["proj.weight"])
    assert_bit_exact(torch.from_dlpack(fresh["steps"]), written["steps"])
    assert_bit_exact(safetensors.torch.load_file(path)["proj.weight"], written["proj.weight"])

    del ck, weight, steps, fresh
    gc.collect()
    assert sha256(path) == digest


def test_from_dlpack_shares_memory_both_ways():
    source = random_tensor(torch.float32, (5, 7))
    h = hfport.from_dlpack(source)
    assert h.data_ptr == source.data_ptr()

    source[1, 2] = 42.0
    assert float(torch.from_dlpack(h)[1, 2]) == 42.0
    assert h.numpy()[1, 2] == 42.0

    back = torch.from_dlpack(h)
    back[0, 0] = -7.0
    assert float(source[0, 0]) == -7.0
    assert h.numpy()[0, 0] == -7.0

    row = h[2]  # an hfport view of the torch memory
    assert row.data_ptr == source[2].data_ptr()
    source[2].fill_(9.0)
    assert torch.from_dlpack(row).tolist() == [9.0] * 7


def test_from_dlpack_keeps_torch_storage_alive():
    source = random_tensor(torch.float32, (1 << 20,))  # 4 MiB: freed memory would be unmapped
    expected = source.clone()
    alive = weakref.ref(source)
    h = hfport.from_dlpack(source)
    view = h[10:20]
    del source
    gc.collect()
    assert alive() is not None, "torch freed the tensor while hfport still views it"
    churn = [torch.full((1 << 20,), float(i)) for i in range(4)]  # would reuse freed memory
    assert_bit_exact(torch.from_dlpack(h), expected)
    del churn, h
    gc.collect()
    assert alive() is not None, "the slice still views the tensor"
    assert_bit_exact(torch.from_dlpack(view), expected[10:20])
    del view
    gc.collect()
    assert alive() is None, "hfport never released the torch tensor"


# Issue 12, defect 2: torch hands a zero-element tensor a null data pointer; from_dlpack offset it
# (undefined behaviour, reported by the sanitizer build of this test: make test-sanitize). Each
# empty view and each op on empty inputs must give what torch gives.
@pytest.mark.parametrize("shape", [(0,), (0, 8), (3, 0, 5), (2, 4, 0)])
def test_zero_element_tensors_cross_and_slice(shape):
    source = torch.empty(shape)
    h = hfport.from_dlpack(source)
    assert tuple(h.shape) == shape
    back = torch.from_dlpack(h)
    assert back.shape == source.shape and back.numel() == 0
    assert tuple(torch.from_dlpack(h[1:]).shape) == tuple(source[1:].shape)
    assert h.numpy().shape == shape
    transposed = hfport.from_dlpack(source.transpose(0, -1) if len(shape) > 1 else source.flip(0))
    assert torch.from_dlpack(transposed).numel() == 0


def test_ops_on_zero_element_inputs_match_torch():
    from hfport import ops

    rows = torch.empty(0, 8)
    weight, bias = torch.randn(8), torch.randn(8)
    cases = [
        (ops.rms_norm(rows, weight, eps=1e-6), rows),
        (ops.layer_norm(rows, weight, bias, eps=1e-6),
         torch.nn.functional.layer_norm(rows, (8,), weight, bias)),
        (ops.gelu(rows), torch.nn.functional.gelu(rows)),
        (ops.linear(rows, torch.randn(4, 8)), torch.empty(0, 4)),
        (ops.linear(torch.randn(3, 0), torch.randn(4, 0)), torch.zeros(3, 4)),
        (ops.causal_conv1d(torch.empty(1, 4, 0), torch.randn(4, 3)), torch.empty(1, 4, 0)),
    ]
    q = torch.empty(1, 2, 0, 16)
    cases.append((ops.attention(q, q, q, causal=True), q))
    for got, expected in cases:
        got = torch.from_dlpack(got)
        assert got.shape == expected.shape
        assert torch.equal(got, expected)


# Issue 12: a file truncated under a live mapping. hfport keeps zero-copy mapping (docs/decisions.md
# says why), refuses new views of a file whose size changed, and reads files into memory on
# request (mmap=False). A view taken before the truncation still dies with SIGBUS, as numpy.memmap
# and safetensors do: that is checked here too, in a child process, so the choice stays visible.
def test_truncated_file_gives_no_new_views_and_mmap_false_is_immune(tmp_path):
    path = tmp_path / "model.safetensors"
    tensors = {"a": random_tensor(torch.float32, (4,)), "w": random_tensor(torch.float32, (4096,))}
    safetensors.torch.save_file(tensors, path)
    size = path.stat().st_size
    mapped, copied = hfport.open(path), hfport.open(path, mmap=False)
    os.truncate(path, 64)
    with pytest.raises(hfport.errors.FileError,
                       match=f"changed size since it was opened \\({size} bytes then, 64 now\\)"):
        mapped["a"]
    for name, expected in tensors.items():
        assert_bit_exact(torch.from_dlpack(copied[name]), expected)


def test_a_view_read_after_truncation_dies_with_sigbus(tmp_path):
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file({"w": torch.ones(1 << 16)}, path)
    script = textwrap.dedent(f"""
        import os, hfport, torch
        view = torch.from_dlpack(hfport.open({str(path)!r})["w"])
        os.truncate({str(path)!r}, 0)
        print(float(view[-1]))
    """)
    # Under the sanitizer build (make test-sanitize) ASan catches SIGBUS itself and exits 1;
    # handle_sigbus=0 leaves the signal to the default action, as in a normal run.
    options = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "handle_sigbus=0"]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120,
                          check=False, env={**os.environ, "ASAN_OPTIONS": options})
    assert done.returncode == -signal.SIGBUS, (done.returncode, done.stderr[-2000:])


# hfport.from_dlpack asks a producer for its capsule without a stream and reads the device from
# the capsule, never calling __dlpack_device__ (torch's costs 1.4 us, most of a tiny op). A CUDA
# capsule got that way is dropped unread and asked for again with stream=1, hfport's stream.
class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):
    pass


_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(_DLManagedTensor))
_DLManagedTensor._fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p),
                             ("deleter", _DELETER)]
_api = ctypes.pythonapi
_api.PyCapsule_New.restype = ctypes.py_object
_api.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_api.PyCapsule_GetName.restype = ctypes.c_char_p
_api.PyCapsule_GetName.argtypes = [ctypes.c_void_p]
_api.PyCapsule_GetPointer.restype = ctypes.c_void_p
_api.PyCapsule_GetPointer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _destroy_capsule(capsule):
    """As a producer's capsule destructor does: free the tensor if no consumer took it."""
    if _api.PyCapsule_GetName(capsule) == b"dltensor":
        managed = _DLManagedTensor.from_address(_api.PyCapsule_GetPointer(capsule, b"dltensor"))
        managed.deleter(ctypes.pointer(managed))


class RecordingProducer:
    """A DLPack producer whose capsules describe a [4] float32 tensor on `device_type` at a fake
    address (never read), recording each __dlpack__ call's stream and each deleter call."""

    def __init__(self, device_type: int):
        self.device_type, self.streams, self.deleted, self._keep = device_type, [], 0, []

    def __dlpack_device__(self):
        raise AssertionError("hfport.from_dlpack must not need __dlpack_device__")

    def __dlpack__(self, stream=None):
        self.streams.append(stream)
        shape = (ctypes.c_int64 * 1)(4)
        managed = _DLManagedTensor()
        managed.dl_tensor = _DLTensor(ctypes.c_void_p(0x10000), _DLDevice(self.device_type, 0), 1,
                                      _DLDataType(2, 32, 1), shape, None, 0)

        def deleter(_):
            self.deleted += 1

        managed.deleter = _DELETER(deleter)
        self._keep += [shape, managed, managed.deleter]
        return _api.PyCapsule_New(ctypes.addressof(managed), b"dltensor",
                                  ctypes.cast(_destroy_capsule, ctypes.c_void_p))


@pytest.mark.parametrize(("device_type", "streams"), [(1, [None]), (2, [None, 1])])
def test_from_dlpack_reads_the_device_from_the_capsule(device_type, streams):
    producer = RecordingProducer(device_type)
    t = hfport.from_dlpack(producer)
    assert producer.streams == streams
    assert tuple(t.shape) == (4,)
    assert t.device == ("cpu" if device_type == 1 else "cuda:0")
    # The capsule taken without a stream on CUDA was dropped unconsumed: its tensor let go.
    assert producer.deleted == len(streams) - 1
    del t
    gc.collect()
    assert producer.deleted == len(streams)
