"""What safetensors and transformers users type, working on hfport (issue 19, point 4): the
checkpoint as a context manager with close(), dtype= given as torch / numpy / ml_dtypes dtypes or
strings everywhere, Tensor.to(torch.float16) / to("cpu"), and load_file / save_file. The files are
written and read back with the safetensors library itself."""

from __future__ import annotations

import gc
from pathlib import Path

import hfport
import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch
import transformers
from conftest import random_tensor
from hfport.errors import CheckpointClosedError, DTypeError


def mapped(path: Path) -> bool:
    target = str(Path(path).resolve())
    return any(line.endswith(" " + target) for line in Path("/proc/self/maps").read_text().splitlines())


@pytest.fixture
def model_file(tmp_path):
    written = {"w": random_tensor(torch.float32, (6, 10)),
               "b": random_tensor(torch.bfloat16, (10,)),
               "n": random_tensor(torch.int32, (3,))}
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(written, path, metadata={"format": "pt"})
    return path, written


def test_checkpoint_is_a_context_manager_and_close_keeps_views_valid(model_file):
    path, written = model_file
    with hfport.open(path) as ck:
        assert isinstance(ck, hfport.Checkpoint) and not ck.closed
        w = ck["w"]
        exported = torch.from_dlpack(ck["b"])
    assert ck.closed
    assert repr(ck) == f"hfport.Checkpoint('{path}', closed)"
    for access in [lambda: ck["w"], lambda: ck.keys(), lambda: len(ck), lambda: "w" in ck,
                   lambda: ck.metadata(), lambda: ck.info("w"), lambda: ck.load_all()]:
        with pytest.raises(CheckpointClosedError, match=f"'{path}' is closed"):
            access()
    with pytest.raises(ValueError):  # as for a closed file
        ck.get_tensor("w")
    gc.collect()
    # The views taken before close hold the mapping; it goes with the last of them.
    assert mapped(path)
    assert torch.equal(torch.from_dlpack(w), written["w"])
    assert torch.equal(exported, written["b"])
    del w, exported
    gc.collect()
    assert not mapped(path)


def test_close_releases_the_mapping_while_the_object_lives(model_file):
    path, _ = model_file
    ck = hfport.open(path)
    assert mapped(path)
    ck.close()
    gc.collect()
    assert not mapped(path)
    ck.close()  # twice is fine, as for files


@pytest.mark.parametrize("dtype", [torch.float16, np.float16, np.dtype("float16"), "float16",
                                   "f16", "F16", "half", "torch.float16"],
                         ids=lambda d: repr(d))
def test_tensor_to_takes_every_spelling_of_a_dtype(model_file, dtype):
    path, written = model_file
    out = hfport.open(path)["w"].to(dtype)
    assert out.dtype == "F16"
    assert torch.equal(torch.from_dlpack(out), written["w"].half())


@pytest.mark.parametrize("dtype", [torch.bfloat16, ml_dtypes.bfloat16, "bf16", "bfloat16"],
                         ids=lambda d: repr(d))
def test_bfloat16_spellings(model_file, dtype):
    path, written = model_file
    out = hfport.open(path)["w"].to(dtype)
    assert out.dtype == "BF16"
    assert torch.equal(torch.from_dlpack(out), written["w"].bfloat16())


def test_tensor_to_a_device_and_both(model_file):
    path, written = model_file
    t = hfport.open(path)["b"]
    assert t.to("cpu").data_ptr == t.data_ptr  # already there: the same tensor
    assert t.to(torch.device("cpu")).data_ptr == t.data_ptr
    both = t.to("cpu", torch.float32)
    assert both.dtype == "F32"
    assert torch.equal(torch.from_dlpack(both), written["b"].float())
    assert t.to(dtype="f32", device="cpu").dtype == "F32"
    with pytest.raises(ValueError, match="two dtypes"):
        t.to(torch.float16, "f32")


@pytest.mark.parametrize("bad", ["float13", object(), 3.5], ids=["name", "object", "number"])
def test_unknown_dtype_is_one_line(model_file, bad):
    path, _ = model_file
    ck = hfport.open(path)
    for call in [lambda: ck["w"].to(bad), lambda: ck.load_all(dtype=bad),
                 lambda: ck["w"].view_dtype(bad)]:
        with pytest.raises(DTypeError) as caught:
            call()
        message = str(caught.value)
        assert "\n" not in message and "Invoked with" not in message, message
        assert "dtype" in message


def test_load_all_takes_torch_and_numpy_dtypes(model_file):
    path, written = model_file
    ck = hfport.open(path)
    state = ck.load_all(dtype=torch.float16)
    assert state["w"].dtype == "F16" and state["n"].dtype == "I32"
    state = ck.load_all(dtype=ml_dtypes.bfloat16)
    assert torch.equal(torch.from_dlpack(state["w"]), written["w"].bfloat16())


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2)
    folder = tmp_path_factory.mktemp("llama")
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_load_and_from_pretrained_take_numpy_and_ml_dtypes(llama_dir):
    state, _ = hfport.load(llama_dir, dtype=np.float16)
    assert {t.dtype for t in state.values()} == {"F16"}
    by_name, _ = hfport.load(llama_dir, dtype="f16")
    for name, t in state.items():
        assert np.array_equal(np.asarray(t), np.asarray(by_name[name])), name
    state, _ = hfport.load(llama_dir, dtype=torch.bfloat16)
    assert {t.dtype for t in state.values()} == {"BF16"}

    ids = torch.tensor([[3, 9, 27, 5]])
    by_type = hfport.models.from_pretrained(llama_dir, dtype=ml_dtypes.bfloat16)
    by_string = hfport.models.from_pretrained(llama_dir, dtype="bfloat16")
    assert torch.equal(torch.from_dlpack(by_type(ids).logits),
                       torch.from_dlpack(by_string(ids).logits))
    with pytest.raises(DTypeError, match="got complex"):
        hfport.models.from_pretrained(llama_dir, dtype=1j)


def test_load_file_gives_zero_copy_torch_tensors(model_file):
    path, written = model_file
    state = hfport.load_file(path)
    assert state.keys() == written.keys()
    regions = [line.split()[0] for line in Path("/proc/self/maps").read_text().splitlines()
               if line.endswith(" " + str(path.resolve()))]
    assert regions, "load_file's tensors do not map the file"
    start, end = (int(x, 16) for x in regions[0].split("-"))
    for name, t in state.items():
        assert isinstance(t, torch.Tensor)
        assert torch.equal(t, written[name]), name
        assert start <= t.data_ptr() < end, f"{name} is a copy, not a view of the mapped file"
    state["w"][0, 0] = 5.0  # writable, copy-on-write: the file keeps its value
    assert torch.equal(safetensors.torch.load_file(path)["w"], written["w"])


def test_save_file_writes_torch_numpy_ml_dtypes_and_hfport_tensors(tmp_path, model_file):
    path, written = model_file
    ck = hfport.open(path)
    transposed = random_tensor(torch.float32, (4, 3)).T  # not contiguous
    bf16 = (np.arange(6, dtype=np.float32) / 4).astype(ml_dtypes.bfloat16)
    tensors = {"from_hfport": ck["w"], "torch": transposed, "numpy": np.arange(5, dtype=np.int16),
               "bf16": bf16, "grad": torch.ones(2, requires_grad=True)}
    out = tmp_path / "out.safetensors"
    hfport.save_file(tensors, out, metadata={"format": "pt", "note": "x"})

    back = safetensors.torch.load_file(out)
    assert sorted(back) == sorted(tensors)
    assert torch.equal(back["from_hfport"], written["w"])
    assert torch.equal(back["torch"], transposed)
    assert back["numpy"].dtype == torch.int16 and back["numpy"].tolist() == [0, 1, 2, 3, 4]
    assert back["bf16"].dtype == torch.bfloat16
    assert back["bf16"].float().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    assert torch.equal(back["grad"], torch.ones(2))
    with safetensors.safe_open(out, "pt") as f:
        assert f.metadata() == {"format": "pt", "note": "x"}
    with pytest.raises(TypeError, match="tensor 'bad' is a str"):
        hfport.save_file({"bad": "text"}, tmp_path / "bad.safetensors")
