"""Loading checkpoints to the GPU: hfport.load(..., device="cuda") and Checkpoint.load_all.

Everywhere: the device and the staging keywords are checked before anything is opened or read, and
a machine or build without CUDA gets a DeviceError saying which; load_all on the CPU gives the
zero-copy views (and host casts). With a GPU (cuda_testing.needs_cuda): every state a GPU load
makes equals the host load's bit for bit (torch.from_dlpack of the CUDA tensor against the host
tensor), with and without a cast on the device (bf16 -> f32 against torch's exact widening, f32 ->
bf16 against torch's rounding), through a staging ring far smaller than the checkpoint, from a
sharded folder, with the report unchanged and tied parameters sharing one device tensor; strict
errors are raised as on the host.

The checkpoints are tiny transformers models saved with save_pretrained: GPT-2 (transposed
Conv1D weights, so strided sources; a tied head), LLaMA in bf16 (q/k/v and gate/up concatenated),
and the same LLaMA in 20 KB shards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import hfport
import pytest
import torch
from cuda_testing import HAS_CUDA, needs_cuda
from hfport.errors import ArgumentError, DeviceError, LoadError, TensorNotFoundError
from safetensors.torch import load_file, save_file

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

TINY_STAGING = {"staging_bytes": 1000, "staging_buffers": 3}  # 3 KiB of ring


def _saved(folder: Path, model, **kwargs) -> Path:
    with torch.no_grad():  # norms start at exactly 1 and biases at 0: make every tensor random
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    model.save_pretrained(folder, **kwargs)
    return folder


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=61, n_positions=32, n_embd=24, n_layer=2, n_head=4)
    return _saved(tmp_path_factory.mktemp("gpt2"), transformers.GPT2LMHeadModel(config))


def _llama() -> transformers.LlamaForCausalLM:
    torch.manual_seed(1)
    config = transformers.LlamaConfig(vocab_size=67, hidden_size=32, intermediate_size=48,
                                      num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=64)
    return transformers.LlamaForCausalLM(config).to(torch.bfloat16)


@pytest.fixture(scope="module")
def llama_bf16_dir(tmp_path_factory) -> Path:
    return _saved(tmp_path_factory.mktemp("llama_bf16"), _llama())


@pytest.fixture(scope="module")
def llama_sharded_dir(tmp_path_factory) -> Path:
    folder = _saved(tmp_path_factory.mktemp("llama_sharded"), _llama(), max_shard_size="20KB")
    assert (folder / "model.safetensors.index.json").exists()
    return folder


def _torch(t: hfport.Tensor) -> torch.Tensor:
    return torch.from_dlpack(t)


def _unavailable_words() -> list[str]:
    if not hfport.built_with_cuda():
        return ["compiled without", "HFPORT_CUDA=OFF"]
    return ["no CUDA device is visible"]


# ---------------------------------------------------------------- everywhere


@pytest.mark.skipif(hfport.cuda_device_count() > 0, reason="a CUDA device is visible here")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:2"])
def test_no_device_is_a_device_error_before_any_work(tmp_path, gpt2_dir, device):
    name = f"cuda:{device[5:] or 0}"
    # The path does not exist: the device is refused before the checkpoint is opened.
    with pytest.raises(DeviceError) as info:
        hfport.load(tmp_path / "not_there", device=device)
    message = str(info.value)
    assert message.startswith("load: ") and name in message
    assert all(word in message for word in _unavailable_words()), message
    # The name does not exist: the device is refused before any name is looked up.
    with pytest.raises(DeviceError) as info:
        hfport.open(gpt2_dir).load_all(device, names=["not.a.tensor"])
    assert str(info.value).startswith("load_all: ") and name in str(info.value)


def test_device_names_and_staging_keywords_are_checked(tmp_path, gpt2_dir):
    ck = hfport.open(gpt2_dir)
    for bad in ["gpu", "cuda:", "cuda:-1", "CUDA", "cuda:0 "]:
        with pytest.raises(DeviceError, match="expected 'cpu', 'cuda' or 'cuda:N'"):
            hfport.load(tmp_path / "not_there", device=bad)
        with pytest.raises(DeviceError, match="expected 'cpu', 'cuda' or 'cuda:N'"):
            ck.load_all(bad)
    # Staging sizes pinned buffers of a GPU load: meaningless for the CPU, checked before the
    # device is (so these messages are the same on every machine).
    with pytest.raises(ArgumentError, match="CUDA device; this load is to cpu"):
        hfport.load(gpt2_dir, staging_bytes=1 << 20)
    with pytest.raises(ArgumentError, match="CUDA device; this load is to cpu"):
        ck.load_all("cpu", staging_buffers=2)
    for kwargs, words in [({"staging_bytes": 0}, "staging_bytes must be 1 to"),
                          ({"staging_bytes": -4096}, "got -4096"),
                          ({"staging_bytes": 1 << 40}, "got 1099511627776"),
                          ({"staging_buffers": 0}, "staging_buffers must be 1 to 64, got 0"),
                          ({"staging_buffers": 65}, "got 65")]:
        with pytest.raises(ArgumentError, match=words):
            hfport.load(tmp_path / "not_there", device="cuda", **kwargs)
        with pytest.raises(ArgumentError, match=words):
            ck.load_all("cuda", **kwargs)
    # A torch.device names the same device as its string.
    state, _ = hfport.load(gpt2_dir, device=torch.device("cpu"))
    assert all(t.device == "cpu" for t in state.values())


def test_load_all_on_the_cpu_is_the_views_or_host_casts(llama_bf16_dir):
    ck = hfport.open(llama_bf16_dir)
    views = ck.load_all()
    assert list(views) == ck.keys()
    for name, t in views.items():
        assert t.data_ptr == ck[name].data_ptr  # the view itself: nothing copied
    names = ["model.norm.weight", "model.embed_tokens.weight"]
    cast = ck.load_all("cpu", names, dtype="float32")
    assert list(cast) == names
    reference = load_file(llama_bf16_dir / "model.safetensors")
    for name in names:
        assert torch.equal(_torch(cast[name]), reference[name].float())
    with pytest.raises(TensorNotFoundError, match="model.nope"):
        ck.load_all("cpu", ["model.norm.weight", "model.nope"])


# ---------------------------------------------------------------- on a GPU


def _assert_same_state(on_gpu: dict, on_host: dict, device: str = "cuda:0") -> None:
    assert list(on_gpu) == list(on_host)
    for name, t in on_gpu.items():
        assert t.device == device, name
        assert t.dtype == on_host[name].dtype, name
        gpu = _torch(t)
        assert gpu.device == torch.device(device) and gpu.is_contiguous(), name
        assert torch.equal(gpu.cpu(), _torch(on_host[name])), name


@needs_cuda
@pytest.mark.parametrize("folder", ["gpt2_dir", "llama_bf16_dir", "llama_sharded_dir"])
@pytest.mark.parametrize("staging", [{}, TINY_STAGING], ids=["default-ring", "tiny-ring"])
def test_gpu_load_equals_the_host_load(request, folder, staging):
    path = request.getfixturevalue(folder)
    on_host, host_report = hfport.load(path)
    on_gpu, gpu_report = hfport.load(path, device="cuda", **staging)
    _assert_same_state(on_gpu, on_host)
    assert gpu_report.to_dict() == host_report.to_dict()
    assert str(gpu_report) == str(host_report)


@needs_cuda
def test_tied_parameters_share_one_device_tensor(gpt2_dir):
    state, report = hfport.load(gpt2_dir, device="cuda:0")
    assert "output.weight" in report.tied
    assert state["output.weight"].data_ptr == state["tok_embd.weight"].data_ptr


@needs_cuda
@pytest.mark.parametrize("staging", [{}, TINY_STAGING], ids=["default-ring", "tiny-ring"])
def test_bf16_to_f32_on_the_device_is_exact(llama_bf16_dir, staging):
    on_host, host_report = hfport.load(llama_bf16_dir)  # bf16, uncast
    on_gpu, gpu_report = hfport.load(llama_bf16_dir, dtype="float32", device="cuda", **staging)
    assert list(on_gpu) == list(on_host)
    for name, t in on_gpu.items():
        assert t.dtype == "F32", name
        assert torch.equal(_torch(t).cpu(), _torch(on_host[name]).float()), name
    # Widening is exact, so the statistics (taken before the device cast) are the host cast's.
    _, host_cast_report = hfport.load(llama_bf16_dir, dtype="float32")
    assert gpu_report.to_dict() == host_cast_report.to_dict()
    assert {p["dtype"] for p in gpu_report.params if p["status"] == "loaded"} == {"F32"}
    assert host_report.ok


@needs_cuda
@pytest.mark.parametrize("staging", [{}, TINY_STAGING], ids=["default-ring", "tiny-ring"])
def test_f32_to_bf16_on_the_device_rounds_as_torch(gpt2_dir, staging):
    on_host, _ = hfport.load(gpt2_dir)  # f32, the transposed weights as strided views
    on_gpu, report = hfport.load(gpt2_dir, dtype="bfloat16", device="cuda", **staging)
    for name, t in on_gpu.items():
        assert t.dtype == "BF16", name
        expected = _torch(on_host[name]).to(torch.bfloat16)
        assert torch.equal(_torch(t).cpu(), expected), name
    assert {p["dtype"] for p in report.params if p["status"] in ("loaded", "tied")} == {"BF16"}


@needs_cuda
def test_strict_errors_are_raised_before_any_upload(tmp_path, llama_bf16_dir):
    broken = tmp_path / "broken"
    broken.mkdir()
    tensors = load_file(llama_bf16_dir / "model.safetensors")
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, broken / "model.safetensors", metadata={"format": "pt"})
    shutil.copy(llama_bf16_dir / "config.json", broken / "config.json")
    with pytest.raises(LoadError) as on_host:
        hfport.load(broken)
    with pytest.raises(LoadError) as on_gpu:
        hfport.load(broken, device="cuda", dtype="float32")
    assert str(on_gpu.value) == str(on_host.value)
    assert "model.layers.1.mlp.up_proj.weight" in str(on_gpu.value)
    state, report = hfport.load(broken, device="cuda", strict=False)
    assert "blk.1.ffn_gate_up.weight" not in state and not report.ok
    assert all(t.device == "cuda:0" for t in state.values())


@needs_cuda
@pytest.mark.parametrize("folder", ["gpt2_dir", "llama_sharded_dir"])
def test_load_all_to_the_gpu_equals_safetensors(request, folder):
    path = request.getfixturevalue(folder)
    ck = hfport.open(path)
    index = path / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    reference = {}
    for shard in shards:
        reference.update(load_file(path / shard, device="cuda"))
    for staging in [{}, TINY_STAGING]:
        on_gpu = ck.load_all("cuda", **staging)
        assert sorted(on_gpu) == sorted(reference)
        for name, t in on_gpu.items():
            assert torch.equal(_torch(t), reference[name]), name
    names = ck.keys()[::3]
    some = ck.load_all("cuda:0", names, dtype="float16", **TINY_STAGING)
    assert list(some) == names
    for name in names:
        expected = reference[name]
        if expected.is_floating_point():
            expected = expected.to(torch.float16)
        assert torch.equal(_torch(some[name]), expected), name


@needs_cuda
def test_results_are_ready_on_a_side_stream_of_torch(llama_bf16_dir):
    # torch.from_dlpack hands torch's current stream to __dlpack__, which makes it wait for
    # hfport's work stream, which waits for the upload's own streams.
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        on_gpu = hfport.open(llama_bf16_dir).load_all("cuda", dtype="float32", **TINY_STAGING)
        copies = {name: _torch(t) * 1 for name, t in on_gpu.items()}  # kernels on `side`
    side.synchronize()
    reference = load_file(llama_bf16_dir / "model.safetensors")
    for name, copy in copies.items():
        assert torch.equal(copy.cpu(), reference[name].float()), name


def test_benchmark_script_runs_or_says_why_not():
    # On a GPU a ~0.2 GB run prints every row with a ratio; elsewhere it says why and exits 0.
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu_load.py"
    result = subprocess.run([sys.executable, str(script), "--gb", "0.02", "--repeats", "1"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    if not HAS_CUDA:
        assert "skipped" in result.stdout and "run it on a machine with a GPU" in result.stdout
        return
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")][2:]
    assert len(table) == 5, result.stdout
    for line in table:
        assert line.split("|")[4].strip().endswith("x"), line
