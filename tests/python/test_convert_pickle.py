"""`hfport convert-pickle` on a real tied ALBERT checkpoint and on crafted pickles.

Every conversion runs the command line in a subprocess, and every written tensor is compared bit
for bit with torch.load(weights_only=True) done here, dropped tied names resolved through the
metadata. Crafted pickles cover what real checkpoints hold: tied weights, views and transposes,
a checkpoint saved on a GPU, a state dict nested under "state_dict" or "model", sharded .bin
files, and pickles that the restricted unpickler must refuse.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import hfport
import pytest
import torch
from conftest import assert_bit_exact, pickle_trap, random_tensor
from hfport.demo import rxnmapper_albert_dir
from hfport.errors import PickleConversionError
from hfport.pickle_convert import TIES_KEY, convert_pickle, parse_size
from safetensors import safe_open


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hfport.cli", *map(str, args)], check=False,
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def reference(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True, map_location="cpu", mmap=False)


def assert_matches(out: Path, expected: dict[str, torch.Tensor], ties: dict[str, str]) -> None:
    """Every expected tensor, read from `out` by hfport and by safetensors, is bit-exact; names
    in `ties` are found under the name they were tied to, and no other name is missing."""
    ck = hfport.open(out)
    assert set(ck.keys()) == set(expected) - set(ties)
    assert json.loads(ck.metadata().get(TIES_KEY, "{}")) == ties
    files = {Path(shard).name for shard in ck.shards}
    seen = set()
    for file in sorted(files):
        with safe_open(str(out / file), "pt") as f:
            names = f.keys()
            seen.update(names)
            for name in names:
                for alias in [name] + [d for d, k in ties.items() if k == name]:
                    assert_bit_exact(f.get_tensor(name), expected[alias])
    assert seen == set(expected) - set(ties)
    for name, tensor in expected.items():
        assert_bit_exact(torch.from_dlpack(ck[ties.get(name, name)]), tensor)


def identical_groups(state: dict[str, torch.Tensor]) -> dict[str, str]:
    """Ties computed here from the loaded state dict: later names -> the first in sorted order."""
    first: dict[tuple[object, ...], str] = {}
    ties = {}
    for name in sorted(state):
        t = state[name]
        key = (t.data_ptr(), t.dtype, tuple(t.shape), t.stride())
        if t.numel() and key in first:
            ties[name] = first[key]
        first.setdefault(key, name)
    return ties


def as_if_saved_on_cuda(path: Path) -> None:
    """Rewrite a torch.save zip so its storages say "cuda:0", as a checkpoint saved from a GPU."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    cpu, cuda = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"  # protocol-2 BINUNICODE
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries:
            if name.endswith("/data.pkl"):
                assert cpu in data
                data = data.replace(cpu, cuda)
            archive.writestr(name, data)


def no_safetensors_in(folder: Path) -> bool:
    return not folder.exists() or not any(p.suffix == ".safetensors" or ".partial" in p.name
                                          for p in folder.iterdir())


# --- the real checkpoint ------------------------------------------------------------------------


def rxnmapper_model() -> Path:
    model = rxnmapper_albert_dir()
    if model is None:
        pytest.skip("the real tied ALBERT checkpoint comes from the PyPI package rxnmapper==0.4.3; "
                    "install it with `pip install --no-deps rxnmapper==0.4.3` (make deps does)")
    return model


def test_real_albert_with_tied_weights(tmp_path: Path) -> None:
    model = rxnmapper_model()
    expected = reference(model / "pytorch_model.bin")
    ties = identical_groups(expected)
    # The checkpoint ties the decoder to the word embeddings, and both output biases.
    assert ties == {"predictions.decoder.weight": "albert.embeddings.word_embeddings.weight",
                    "predictions.decoder.bias": "predictions.bias"}
    result = run_cli("convert-pickle", model, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "read 32 tensors" in result.stdout and "the top level" in result.stdout
    assert "2 tied name(s)" in result.stdout
    assert "predictions.decoder.weight -> albert.embeddings.word_embeddings.weight" in result.stdout
    assert "wrote 30 tensors" in result.stdout and "model.safetensors" in result.stdout
    out = tmp_path / "out"
    assert_matches(out, expected, ties)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert json.loads(f.metadata()[TIES_KEY]) == ties
        assert f.metadata()["format"] == "pt"
    for name in ("config.json", "vocab.txt", "special_tokens_map.json"):
        assert (out / name).read_bytes() == (model / name).read_bytes()
    assert hfport.open(out).config["model_type"] == "albert"


def test_real_albert_loads_in_transformers(tmp_path: Path) -> None:
    model = rxnmapper_model()
    assert run_cli("convert-pickle", model / "pytorch_model.bin", tmp_path).returncode == 0
    import transformers

    transformers.logging.set_verbosity_error()
    loaded = transformers.AlbertForMaskedLM.from_pretrained(tmp_path).state_dict()
    expected = reference(model / "pytorch_model.bin")
    # The masked-LM class has no pooler; the checkpoint, saved from pretraining, does.
    assert set(expected) - set(loaded) == {"albert.pooler.weight", "albert.pooler.bias"}
    for name in set(expected) & set(loaded):  # the tied decoder weight and bias included
        assert_bit_exact(loaded[name], expected[name])


# --- crafted checkpoints ------------------------------------------------------------------------


def test_tied_pair_views_and_gpu_storage(tmp_path: Path) -> None:
    base = random_tensor(torch.float32, (5, 7))
    state = {"b.weight": base, "a.weight": base, "transposed": base.t(), "row": base[3],
             "other": random_tensor(torch.bfloat16, (3, 1)), "empty": torch.empty(0),
             "also_empty": torch.empty(0), "flag": random_tensor(torch.bool, (9,))}
    path = tmp_path / "model.pt"
    torch.save(state, path)
    as_if_saved_on_cuda(path)
    if not torch.cuda.is_available():  # the first failure of the old one-line command
        with pytest.raises(RuntimeError, match="deserialize object on a CUDA device"):
            torch.load(path, weights_only=True)
    expected = reference(path)
    result = run_cli("convert-pickle", path, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "b.weight -> a.weight" in result.stdout
    assert "3 tensor(s) overlapping others in storage written as separate copies" in result.stdout
    assert_matches(tmp_path / "out", expected, {"b.weight": "a.weight"})


@pytest.mark.parametrize("key", ["state_dict", "model"])
def test_state_dict_nested_under_a_key(tmp_path: Path, key: str) -> None:
    weights = {"w": random_tensor(torch.float16, (4, 3)), "v": random_tensor(torch.int64, (2,))}
    path = tmp_path / "last.ckpt"
    torch.save({key: weights, "epoch": 3, "optimizer": {"lr": 0.1}}, path)
    result = run_cli("convert-pickle", path, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert f"the '{key}' entry" in result.stdout
    assert_matches(tmp_path / "out", reference(path)[key], {})


@pytest.mark.parametrize(("content", "found"), [
    ([torch.zeros(2)], "holds a list"),
    ({"epoch": 3, "w": torch.zeros(2)},
     "holds a dict with 2 entries ('epoch': int, 'w': tensor)"),
    ({"state_dict": {"w": 1}}, "holds a dict with 1 entry ('state_dict': dict with 1 entry)"),
])
def test_not_a_state_dict(tmp_path: Path, content: object, found: str) -> None:
    path = tmp_path / "model.pt"
    torch.save(content, path)
    result = run_cli("convert-pickle", path, tmp_path / "out")
    assert result.returncode == 1
    assert f"'{path}' {found}; expected a state dict" in result.stderr
    assert no_safetensors_in(tmp_path / "out")


@pytest.mark.parametrize(("bad", "message"), [
    (torch.zeros(2, dtype=torch.complex64), r"\(torch.complex64\) has no safetensors form"),
    (torch.eye(3).to_sparse(), "is torch.sparse_coo; only dense tensors"),
])
def test_tensor_without_safetensors_form(tmp_path: Path, bad: torch.Tensor, message: str) -> None:
    path = tmp_path / "model.pt"
    # With 100-byte shards "a" may be written before "z" fails: nothing may be left behind.
    torch.save({"a": torch.zeros(100), "b": torch.zeros(100), "z": bad}, path)
    with pytest.raises(PickleConversionError, match=f"'{path}': tensor 'z' .*{message}"):
        convert_pickle(path, tmp_path / "out", "100B")
    assert not (tmp_path / "out").exists()


def test_sharded_bin_index_into_small_shards(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    embed = random_tensor(torch.float32, (16, 8))  # 512 bytes
    shards = {
        "pytorch_model-00001-of-00002.bin": {"embed.weight": embed, "lm_head.weight": embed,
                                             "layers.0.w": random_tensor(torch.float32, (40,))},
        "pytorch_model-00002-of-00002.bin": {"layers.1.w": random_tensor(torch.float32, (40,)),
                                             "layers.1.b": random_tensor(torch.float64, (3,)),
                                             "big": random_tensor(torch.int32, (300,))},
    }
    expected: dict[str, torch.Tensor] = {}
    for file, weights in shards.items():
        torch.save(weights, src / file)
        expected.update(reference(src / file))
    weight_map = {name: file for file, weights in shards.items() for name in weights}
    (src / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    (src / "config.json").write_text('{"model_type": "llama"}')
    out = tmp_path / "out"
    result = run_cli("convert-pickle", src, out, "--max-shard-size", "600B")
    assert result.returncode == 0, result.stderr
    ties = {"lm_head.weight": "embed.weight"}
    assert_matches(out, expected, ties)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) >= 3 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    assert index["metadata"]["total_size"] == sum(
        t.numel() * t.element_size() for n, t in expected.items() if n not in ties)
    for file in files:
        with safe_open(str(out / file), "pt") as f:
            names = f.keys()
            sizes = [f.get_tensor(n).numel() * f.get_tensor(n).element_size() for n in names]
            assert sum(sizes) <= 600 or len(sizes) == 1  # a larger tensor alone in its shard
            assert (TIES_KEY in f.metadata()) == ("embed.weight" in names)
    assert (out / "config.json").read_text() == '{"model_type": "llama"}'
    assert not list(out.glob("*.partial"))


def test_index_with_shard_outside_the_folder(tmp_path: Path) -> None:
    index = tmp_path / "pytorch_model.bin.index.json"
    index.write_text(json.dumps({"weight_map": {"w": "../elsewhere.bin"}}))
    with pytest.raises(PickleConversionError,
                       match="shard '../elsewhere.bin' of tensor 'w' must be a path inside"):
        convert_pickle(tmp_path, tmp_path / "out")


def test_index_naming_a_tensor_the_shard_lacks(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(2)}, tmp_path / "a.bin")
    (tmp_path / "pytorch_model.bin.index.json").write_text(
        json.dumps({"weight_map": {"w": "a.bin", "v": "a.bin"}}))
    with pytest.raises(PickleConversionError,
                       match=r"a\.bin' does not hold what the index lists: missing \['v'\]"):
        convert_pickle(tmp_path, tmp_path / "out")
    assert no_safetensors_in(tmp_path / "out")


class Unlisted:
    """A class instance in a checkpoint: torch's restricted unpickler refuses its global."""


def test_forbidden_global_is_refused_with_torchs_message(tmp_path: Path) -> None:
    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.zeros(2), "args": Unlisted()}, path)
    result = run_cli("convert-pickle", path, tmp_path / "out")
    assert result.returncode == 1
    assert "PickleConversionError" in result.stderr
    assert "refused it, and hfport does not retry without weights_only" in result.stderr
    assert "Unsupported global: GLOBAL test_convert_pickle.Unlisted" in result.stderr
    assert no_safetensors_in(tmp_path / "out")


class MkdirOnLoad:
    """Unpickling this creates the folder `marker` (conftest's trap, in any protocol)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.marker,))


def test_protocol_2_trap_works(tmp_path: Path) -> None:
    pickle.loads(pickle.dumps(MkdirOnLoad(tmp_path / "sprung"), protocol=2))
    assert (tmp_path / "sprung").is_dir()


# conftest's trap is protocol 4, whose FRAME opcode torch's unpickler refuses before any global;
# torch.save writes protocol 2, where the refusal is of the global os.mkdir itself.
@pytest.mark.parametrize(("protocol", "layout", "refusal"), [
    (4, "raw pickle", "Unsupported operand"),
    (2, "raw pickle", "unsupported GLOBAL posix.mkdir"),
    (2, "torch zip", "unsupported GLOBAL posix.mkdir"),
])
def test_pickle_trap_is_never_sprung(tmp_path: Path, protocol: int, layout: str,
                                     refusal: str) -> None:
    marker = tmp_path / "unpickled"
    data = (pickle_trap(marker) if protocol == 4
            else pickle.dumps({"weight": MkdirOnLoad(marker)}, protocol=2))
    path = tmp_path / "pytorch_model.bin"
    if layout == "raw pickle":
        path.write_bytes(data)
    else:
        with zipfile.ZipFile(path, "w") as archive:  # the layout torch.save writes
            archive.writestr("archive/data.pkl", data)
            archive.writestr("archive/version", "3\n")
    result = run_cli("convert-pickle", tmp_path, tmp_path / "out")
    assert result.returncode == 1
    assert "refused it, and hfport does not retry" in result.stderr and refusal in result.stderr
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_module_in_the_working_folder_is_not_imported(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "torch.py").write_text(f"import os\nos.mkdir({str(marker)!r})\n")
    path = tmp_path / "model.pth"
    torch.save({"w": random_tensor(torch.float32, (3,))}, path)
    result = run_cli("convert-pickle", path, tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert_matches(tmp_path / "out", reference(path), {})


def test_output_folder_with_safetensors_is_refused(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.safetensors").write_bytes(b"")
    with pytest.raises(PickleConversionError, match="already holds model.safetensors"):
        convert_pickle(tmp_path / "model.pt", tmp_path / "out")


def test_folder_without_pytorch_model_bin(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(2)}, tmp_path / "weights.pt")
    with pytest.raises(PickleConversionError, match="name one of its pickle files instead: "
                                                    "weights.pt"):
        convert_pickle(tmp_path, tmp_path / "out")


@pytest.mark.parametrize(("text", "size"), [
    ("5GB", 5 * 10**9), ("5gb", 5 * 10**9), ("600B", 600), ("1000", 1000), ("2KiB", 2048),
    ("3 MB", 3 * 10**6), ("1TiB", 2**40),
])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "5XB", "-1GB", "1.5GB", "GB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(PickleConversionError, match=f"max shard size {text!r} is not a positive"):
        parse_size(text)
