"""hfport.Tensor for quick poking, as torch users poke (issue 19, point 5): a repr with values,
tolist / item / float(t), T and mT, size() and numel(), == through numpy, and "did you mean" on a
tensor name that is not in the checkpoint. torch, on the same values, is the reference."""

from __future__ import annotations

import re

import hfport
import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import random_tensor
from hfport.errors import ArgumentError, SliceError, TensorNotFoundError


def h(t: torch.Tensor) -> hfport.Tensor:
    return hfport.from_dlpack(t)


def numbers_in(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e[+-]?\d+)?", text.split("dtype=")[0])]


def test_repr_shows_values_dtype_and_no_device_on_cpu():
    t = h(torch.tensor([[1.5, -2.25, 3.0], [0.125, 4.0, -8.5]]))
    text = repr(t)
    assert text.startswith("tensor([[") and text.endswith(", dtype=float32)")
    assert numbers_in(text) == [1.5, -2.25, 3.0, 0.125, 4.0, -8.5]
    assert "device" not in text
    assert repr(h(torch.tensor([3, -1, 7]))) == "tensor([ 3, -1,  7], dtype=int64)"
    assert numbers_in(repr(h(torch.tensor(2.5, dtype=torch.float64)))) == [2.5]
    assert "True" in repr(h(torch.tensor([True, False])))
    assert repr(h(torch.zeros(0, 3))) == "tensor([], size=(0, 3), dtype=float32)"


def test_repr_of_bf16_shows_its_values():
    source = torch.tensor([[0.5, -1.25], [3.0, 1e-2]], dtype=torch.bfloat16)
    text = repr(h(source))
    assert text.endswith(", dtype=bfloat16)")
    shown = numbers_in(text)
    assert len(shown) == 4
    assert np.allclose(shown, source.float().flatten().tolist(), rtol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_repr_of_a_large_tensor_is_elided(dtype):
    source = torch.arange(2000 * 384, dtype=torch.float32).reshape(2000, 384).to(dtype)
    text = repr(h(source))
    assert "..." in text
    assert len(text) < 2000, f"{len(text)} characters"
    assert text.count("\n") < 20
    shown = numbers_in(text)
    assert shown[0] == 0.0 and shown[1] == 1.0
    assert np.isclose(shown[-1], float(source[-1, -1]), rtol=1e-3)


def test_tolist_item_and_python_numbers_match_torch():
    for dtype in [torch.int64, torch.float32, torch.bfloat16, torch.float16, torch.bool]:
        source = random_tensor(dtype, (3, 4))
        assert h(source).tolist() == source.tolist(), dtype
    one = torch.tensor([[-2.75]])
    assert h(one).item() == -2.75
    assert float(h(one)) == -2.75
    assert int(h(torch.tensor(7))) == 7
    assert bool(h(torch.tensor([0.0]))) is False
    assert bool(h(torch.tensor([1]))) is True
    assert isinstance(h(torch.tensor(3)).item(), int)
    assert h(torch.tensor(1.5, dtype=torch.bfloat16)).item() == 1.5


def test_more_than_one_element_is_no_python_number():
    t = h(torch.zeros(2, 3))
    with pytest.raises(TypeError, match=r"float\(\) needs a tensor with one element, got shape "
                                        r"\(2, 3\) \(6 elements\)"):
        float(t)
    with pytest.raises(TypeError, match=r"item\(\).*\(6 elements\)"):
        t.item()
    with pytest.raises(TypeError, match=r"int\(\)"):
        int(t)
    with pytest.raises(ValueError, match="truth value of a tensor with 6 elements.*ambiguous"):
        bool(t)


def test_transposes_are_views_like_torch():
    source = random_tensor(torch.float32, (3, 5))
    t = h(source)
    assert torch.equal(torch.from_dlpack(t.T), source.T)
    assert t.T.data_ptr == t.data_ptr and t.T.shape == (5, 3) and t.T.strides == (1, 5)
    batch = random_tensor(torch.float32, (2, 3, 4))
    assert torch.equal(torch.from_dlpack(h(batch).mT), batch.mT)
    assert torch.equal(torch.from_dlpack(h(batch).transpose(0, 2)), batch.transpose(0, 2))
    vector = h(torch.arange(4.0))
    assert vector.T.shape == (4,)
    with pytest.raises(ArgumentError, match=r"shape \[2, 3, 4\].*\.mT"):
        _ = h(batch).T
    with pytest.raises(ArgumentError, match=r"at least 2 dimensions, got shape \[4\]"):
        _ = vector.mT


def test_size_and_numel():
    t = h(torch.zeros(2, 7, 3))
    assert t.size() == (2, 7, 3)
    assert t.size(1) == 7 and t.size(-1) == 3
    assert t.numel() == 42
    with pytest.raises(SliceError, match=r"size\(3\).*shape \[2, 7, 3\]"):
        t.size(3)


def test_equality_goes_through_numpy():
    a = random_tensor(torch.float32, (4, 5))
    b = a.clone()
    b[1, 2] += 1.0
    result = h(a) == h(b)
    assert isinstance(result, np.ndarray) and result.dtype == np.bool_
    assert np.array_equal(result, (a == b).numpy())
    assert np.array_equal(h(a) != b.numpy(), (a != b).numpy())
    assert np.array_equal(h(a) == b, (a == b).numpy())
    assert (h(torch.tensor([1, 2, 3])) == 2).tolist() == [False, True, False]
    bf = torch.tensor([1.0, 2.5], dtype=torch.bfloat16)
    assert (h(bf) == h(bf.clone())).all()
    assert (h(a) == None) is False  # not array-like: Python's identity fallback
    t = h(a)
    assert {t: 1}[t] == 1  # still hashable, by identity, as torch tensors are


def test_missing_tensor_name_suggests_the_closest(tmp_path):
    path = tmp_path / "model.safetensors"
    names = ["model.layers.0.weight", "model.layers.1.weight", "model.norm.weight", "lm_head.weight"]
    safetensors.torch.save_file({n: torch.zeros(2) for n in names}, path)
    ck = hfport.open(path)
    with pytest.raises(KeyError) as caught:
        ck["model.layer.0.weight"]
    message = str(caught.value)
    assert isinstance(caught.value, TensorNotFoundError)
    assert str(path) in message
    assert "did you mean 'model.layers.0.weight', 'model.layers.1.weight'" in message
    # A name missing a whole leading part is the commonest mismatch.
    with pytest.raises(KeyError, match="did you mean 'model.norm.weight'"):
        ck.get_tensor("norm.weight")
    with pytest.raises(KeyError) as caught:
        ck["completely.different"]
    assert "did you mean" not in str(caught.value)
