"""Files written by the `safetensors` package read back through hfport bit for bit.

Every value is compared with what `safetensors` itself loads from the same file, and every dtype
name and shape with the ones the test wrote; the offsets with the header parsed by hand.
"""

from __future__ import annotations

import hfport
import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from conftest import (
    TORCH_DTYPES,
    as_bytes,
    assert_bit_exact,
    dtype_id,
    quoted,
    random_tensor,
    read_header,
)
from safetensors import safe_open

SHAPES = {
    "scalar": (),
    "empty": (0,),
    "zero_mid": (3, 0, 2),
    "one": (1,),
    "odd": (7, 13),
    "cube": (2, 3, 5),
}


def load_every_way(path, names):
    """For each name: (hfport view, torch tensor through DLPack, what safetensors loads)."""
    ck = hfport.open(path)
    reference = safetensors.torch.load_file(path)
    assert sorted(ck.keys()) == sorted(names)
    assert len(ck) == len(names)
    return ck, reference


@pytest.mark.parametrize(("dtype", "name"), TORCH_DTYPES, ids=[dtype_id(d) for d, _ in TORCH_DTYPES])
def test_torch_save_file_round_trip(tmp_path, dtype, name):
    written = {f"{label}.{dtype_id(dtype)}": random_tensor(dtype, shape)
               for label, shape in SHAPES.items()}
    path = tmp_path / f"{name}.safetensors"
    safetensors.torch.save_file(written, path)

    ck, reference = load_every_way(path, written)
    _, header = read_header(path)
    for key, original in written.items():
        view = ck[key]
        assert view.dtype == name
        assert view.shape == tuple(original.shape)
        assert view.ndim == original.dim()
        assert view.numel() == original.numel()
        assert view.nbytes == original.numel() * original.element_size()
        info = ck.info(key)
        assert info["dtype"] == name
        assert list(info["shape"]) == list(original.shape)
        assert list(info["data_offsets"]) == header[key]["data_offsets"]
        out = torch.from_dlpack(view)
        assert_bit_exact(out, reference[key])
        assert_bit_exact(out, original)


def test_every_dtype_in_one_file_with_unicode_names_and_metadata(tmp_path):
    written = {}
    for i, (dtype, _) in enumerate(TORCH_DTYPES):
        written[f"layer.{i}.wéight.{dtype_id(dtype)}"] = random_tensor(dtype, (3, 5))
    written["名前/テンソル"] = random_tensor(torch.float32, (4,))
    written["emoji.🦀.bias"] = random_tensor(torch.bfloat16, ())
    metadata = {"format": "pt", "autor": "Jürgen", "说明": "小模型", "empty": ""}
    path = tmp_path / "mixed.safetensors"
    safetensors.torch.save_file(written, path, metadata=metadata)

    ck, reference = load_every_way(path, written)
    assert ck.metadata() == metadata
    assert list(ck.keys()) == sorted(written)  # UTF-8 byte order is code point order
    assert list(ck) == sorted(written)
    for key, original in written.items():
        assert key in ck
        assert_bit_exact(torch.from_dlpack(ck[key]), reference[key])
        assert_bit_exact(torch.from_dlpack(ck.get_tensor(key)), original)
    expected_names = {f"layer.{i}.wéight.{dtype_id(d)}": n for i, (d, n) in enumerate(TORCH_DTYPES)}
    for key, dtype_name in expected_names.items():
        assert ck[key].dtype == dtype_name
    assert "absent" not in ck


def test_file_without_tensors(tmp_path):
    path = tmp_path / "nothing.safetensors"
    safetensors.torch.save_file({}, path, metadata={"only": "metadata"})
    ck = hfport.open(path)
    assert len(ck) == 0
    assert ck.keys() == []
    assert ck.metadata() == {"only": "metadata"}


def test_null_metadata_reads_as_none_like_safetensors(tmp_path):
    header = b'{"__metadata__":null,"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}'
    path = tmp_path / "null_metadata.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\x07\x09")
    with safe_open(str(path), "pt") as f:
        assert f.metadata() is None
        expected = f.get_tensor("w")
    ck = hfport.open(path)
    assert ck.metadata() == {}
    assert torch.equal(torch.from_dlpack(ck["w"]), expected)


def test_missing_tensor_names_tensor_and_file(tmp_path):
    path = tmp_path / "one.safetensors"
    safetensors.torch.save_file({"present": random_tensor(torch.float32, (2,))}, path)
    ck = hfport.open(path)
    with pytest.raises(hfport.errors.TensorNotFoundError, match="no tensor 'absent' in " +
                       quoted(path) + r" \(1 tensors\)"):
        ck["absent"]
    with pytest.raises(KeyError):
        ck.info("absent")


NUMPY_DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
                np.uint64, np.float16, np.float32, np.float64]
NUMPY_NAMES = ["BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F16", "F32", "F64"]


def random_array(dtype, shape):
    return random_tensor(torch.from_numpy(np.zeros(0, dtype=dtype)).dtype, shape).numpy()


@pytest.mark.parametrize(("dtype", "name"), list(zip(NUMPY_DTYPES, NUMPY_NAMES, strict=True)),
                         ids=NUMPY_NAMES)
def test_numpy_save_file_round_trip(tmp_path, dtype, name):
    written = {f"{label}": random_array(dtype, shape) for label, shape in SHAPES.items()}
    path = tmp_path / f"np_{name}.safetensors"
    safetensors.numpy.save_file(written, path, metadata={"writer": "numpy"})

    ck = hfport.open(path)
    reference = safetensors.numpy.load_file(path)
    assert ck.metadata() == {"writer": "numpy"}
    for key, original in written.items():
        view = ck[key]
        assert view.dtype == name
        for out in (view.numpy(), hfport.to_numpy(view), np.from_dlpack(view)):
            assert out.dtype == np.dtype(dtype)
            assert out.shape == original.shape
            assert out.tobytes() == reference[key].tobytes()
            assert out.tobytes() == original.tobytes()


SPECIAL = [
    (torch.bfloat16, ml_dtypes.bfloat16, np.uint16),
    (torch.float8_e4m3fn, ml_dtypes.float8_e4m3fn, np.uint8),
    (torch.float8_e5m2, ml_dtypes.float8_e5m2, np.uint8),
]


@pytest.mark.parametrize(("dtype", "ml_dtype", "carrier"), SPECIAL,
                         ids=[dtype_id(d) for d, _, _ in SPECIAL])
def test_numpy_export_of_types_numpy_lacks(tmp_path, dtype, ml_dtype, carrier):
    written = {"w": random_tensor(dtype, (5, 7)), "s": random_tensor(dtype, ())}
    path = tmp_path / "special.safetensors"
    safetensors.torch.save_file(written, path)
    ck = hfport.open(path)
    for key, original in written.items():
        arr = ck[key].numpy()
        assert arr.dtype == np.dtype(ml_dtype)
        assert arr.shape == tuple(original.shape)
        assert np.array_equal(arr.view(carrier), as_bytes(original).numpy().view(carrier)
                              .reshape(arr.shape))
        finite = np.isfinite(original.float().numpy())
        assert np.array_equal(arr.astype(np.float32)[finite], original.float().numpy()[finite])
        assert arr.ctypes.data == ck[key].data_ptr  # a view of the mapping, not a copy


@pytest.mark.parametrize(("dtype", "name"), TORCH_DTYPES, ids=[dtype_id(d) for d, _ in TORCH_DTYPES])
def test_from_dlpack_of_torch_tensors(dtype, name):
    for shape in [(), (0,), (6,), (4, 9), (2, 3, 5)]:
        source = random_tensor(dtype, shape)
        h = hfport.from_dlpack(source)
        assert h.dtype == name
        assert h.shape == tuple(shape)
        assert h.strides == source.stride()
        if source.numel():
            assert h.data_ptr == source.data_ptr()
        back = torch.from_dlpack(h)
        assert_bit_exact(back, source)
        if source.numel():
            assert back.data_ptr() == source.data_ptr()

    base = random_tensor(dtype, (6, 8))
    strided = base.t()[1::2]  # a transposed, stepped view: strides (2, 8)
    h = hfport.from_dlpack(strided)
    assert h.shape == (4, 6)
    assert h.strides == strided.stride() == (2, 8)
    assert h.data_ptr == strided.data_ptr()
    assert not h.is_contiguous()
    assert_bit_exact(torch.from_dlpack(h), strided)
    assert_bit_exact(torch.from_dlpack(h.contiguous()), strided.contiguous())


def test_from_dlpack_refuses_what_it_cannot_hold():
    with pytest.raises(hfport.errors.DLPackError, match="dtype code 5, 64 bits, 1 lanes"):
        hfport.from_dlpack(torch.zeros(3, dtype=torch.complex64))
    with pytest.raises(hfport.errors.DLPackError, match="list is not a DLPack producer"):
        hfport.from_dlpack([1.0, 2.0])
    capsule = torch.ones(3).__dlpack__()
    hfport.from_dlpack(capsule)
    with pytest.raises(hfport.errors.DLPackError, match="a capsule can be consumed once"):
        hfport.from_dlpack(capsule)


def test_negative_strides_import_but_refuse_export():
    backwards = np.arange(12, dtype=np.float32).reshape(3, 4)[::-1, ::-2]
    view = hfport.from_dlpack(backwards)
    assert view.strides == (-4, -2)
    np.testing.assert_array_equal(torch.from_dlpack(view.contiguous()).numpy(), backwards)
    with pytest.raises(hfport.errors.DLPackError, match=r"negative strides \[-4, -2\]"):
        torch.from_dlpack(view)


@pytest.fixture
def slice_file(tmp_path):
    written = {
        "matrix": random_tensor(torch.float32, (6, 9)),
        "cube": random_tensor(torch.bfloat16, (4, 5, 6)),
        "vector": random_tensor(torch.int64, (11,)),
        "hyper": random_tensor(torch.float16, (3, 4, 2, 5)),
    }
    path = tmp_path / "slices.safetensors"
    safetensors.torch.save_file(written, path)
    return path, written


SLICE_KEYS = [
    0,
    -1,
    2,
    slice(None),
    slice(1, None, 2),
    slice(None, None, 3),
    slice(-3, None),
    slice(5, 2),
    slice(-100, 100),
    Ellipsis,
    (),
    (1, Ellipsis),
    (Ellipsis, 1),
    (Ellipsis, -1),
    (slice(None), 2),
    (slice(None, None, 2), slice(1, 4)),
    (-2, slice(None, None, 2)),
    (1, -1),
    (slice(1, 3), Ellipsis, slice(None, None, 2)),
]


@pytest.mark.parametrize("key", SLICE_KEYS, ids=repr)
@pytest.mark.parametrize("name", ["matrix", "cube", "hyper"])
def test_get_slice_matches_safetensors(slice_file, name, key):
    path, written = slice_file
    ck = hfport.open(path)
    with safe_open(path, framework="pt") as f:
        expected = f.get_slice(name)[key]
        st_slice = f.get_slice(name)
        assert ck.get_slice(name).get_shape() == st_slice.get_shape()
        assert ck.get_slice(name).get_dtype() == st_slice.get_dtype()
    view = ck.get_slice(name)[key]
    assert view.shape == tuple(expected.shape)
    assert_bit_exact(torch.from_dlpack(view), expected)
    assert_bit_exact(torch.from_dlpack(view), written[name][key])


@pytest.mark.parametrize("key", [0, -1, -11, 10, slice(2, 9, 3), slice(None, None, 4), (), ...],
                         ids=repr)
def test_get_slice_of_vector(slice_file, key):
    path, _written = slice_file
    ck = hfport.open(path)
    with safe_open(path, framework="pt") as f:
        expected = f.get_slice("vector")[key]
    assert_bit_exact(torch.from_dlpack(ck.get_slice("vector")[key]), expected)


def test_numpy_and_torch_integers_index_like_ints(slice_file):
    path, written = slice_file
    ck = hfport.open(path)
    for key in [(np.int64(2), np.int32(-1)), (torch.tensor(3), slice(np.int64(1), None))]:
        view = ck.get_slice("matrix")[key]
        assert_bit_exact(torch.from_dlpack(view), written["matrix"][key])


def test_slices_are_views_of_the_mapping(slice_file):
    path, _written = slice_file
    ck = hfport.open(path)
    whole = ck["matrix"]
    part = ck.get_slice("matrix")[2:, 3]
    assert part.data_ptr == whole.data_ptr + (2 * 9 + 3) * 4
    assert part.strides == (9,)
    assert torch.from_dlpack(part).data_ptr() == part.data_ptr


BAD_KEYS = [
    (6, r"index 6 is out of range for dimension 0 of size 6 of a tensor of shape \[6, 9\]"),
    (-7, "index -7 is out of range for dimension 0 of size 6"),
    ((0, 9), r"index 9 is out of range for dimension 1 of size 9 of a tensor of shape \[6, 9\]"),
    ((Ellipsis, -10), "index -10 is out of range for dimension 1 of size 9"),
    (2**70, f"index {2**70} is out of range for dimension 0 of size 6"),
    ((0, -(2**64)), f"index {-(2**64)} is out of range for dimension 1 of size 9"),
    ((0, 0, 0), r"too many indices \(3\) for a tensor of shape \[6, 9\]"),
    ((Ellipsis, 0, Ellipsis), r"only one Ellipsis"),
    (slice(None, None, -1), "slices need a positive step, got -1"),
    ((slice(None), slice(4, 1, -2)), "slices need a positive step, got -2"),
    ((0, slice(None, None, 0)), (r"bad slice slice\(None, None, 0\) for dimension 1 .*step "
                                "cannot be zero")),
    (slice("a", None), r"bad slice slice\('a', None, None\) for dimension 0"),
    ("a", "tensor indices must be ints, slices or ..., got str"),
    (1.0, "got float"),
    (None, "got NoneType"),
    (True, "got bool"),
    ([0, 1], "got list"),
]


@pytest.mark.parametrize(("key", "message"), BAD_KEYS, ids=[repr(k) for k, _ in BAD_KEYS])
def test_bad_slice_keys_raise_slice_error(slice_file, key, message):
    path, _ = slice_file
    ck = hfport.open(path)
    with pytest.raises(hfport.errors.SliceError, match=message) as caught:
        ck.get_slice("matrix")[key]
    assert isinstance(caught.value, IndexError)
