"""Sharded checkpoints: a real folder written by transformers' save_pretrained, read whole, and
copies of it broken one rule at a time, each raising its own ShardError (or File/Config) class.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import hfport
import pytest
import safetensors.torch
import torch
from conftest import assert_bit_exact, pickle_trap, quoted, random_tensor
from hfport import errors

INDEX = "model.safetensors.index.json"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A tiny random-init Llama saved in several shards; (folder, state_dict) of the model."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                         max_position_embeddings=64)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # norms start at exactly 1.0; make every tensor random
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    folder = tmp_path_factory.mktemp("llama") / "model"
    model.save_pretrained(folder, max_shard_size="20KB")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return folder, state


@pytest.fixture
def folder_copy(saved_model, tmp_path):
    """A private copy of the saved folder to break, and its parsed index."""
    folder = tmp_path / "model"
    shutil.copytree(saved_model[0], folder)
    return folder, json.loads((folder / INDEX).read_text())


def write_index(folder: Path, index: dict) -> None:
    (folder / INDEX).write_text(json.dumps(index))


def first_tensor_of_shard(index: dict, shard: str) -> str:
    return min(name for name, s in index["weight_map"].items() if s == shard)


def test_save_pretrained_wrote_a_real_sharded_folder(saved_model):
    folder, _ = saved_model
    index = json.loads((folder / INDEX).read_text())
    assert len(set(index["weight_map"].values())) >= 3


@pytest.mark.parametrize("how", ["folder", "index_path", "index_path_str"])
def test_sharded_folder_reads_every_tensor(saved_model, how):
    folder, state = saved_model
    target = {"folder": folder, "index_path": folder / INDEX,
              "index_path_str": str(folder / INDEX)}[how]
    ck = hfport.open(target)
    index = json.loads((folder / INDEX).read_text())

    assert ck.is_sharded
    assert sorted(ck.keys()) == sorted(index["weight_map"]) == sorted(state)
    assert len(ck) == len(state)
    shard_files = {str(folder / s) for s in index["weight_map"].values()}
    assert set(ck.shards) == shard_files
    assert len(ck.shards) == len(shard_files)
    for name, expected in state.items():
        assert ck[name].dtype == "F32"
        assert ck[name].shape == tuple(expected.shape)
        assert ck.info(name)["shard"] == str(folder / index["weight_map"][name])
        assert_bit_exact(torch.from_dlpack(ck[name]), expected)
    for key, value in index["metadata"].items():
        assert ck.metadata()[key] == (value if isinstance(value, str) else json.dumps(value))
    assert ck.config == json.loads((folder / "config.json").read_text())
    assert ck.config["num_hidden_layers"] == 2


def test_single_file_folder_and_its_config(tmp_path):
    written = {"a": random_tensor(torch.float16, (3, 4)), "b": random_tensor(torch.int32, (5,))}
    safetensors.torch.save_file(written, tmp_path / "weights.safetensors")
    config = {"model_type": "toy", "hidden_size": 4, "names": ["ä", "b"]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    for target in (tmp_path, tmp_path / "weights.safetensors"):
        ck = hfport.open(target)
        assert not ck.is_sharded
        assert ck.shards == [str(tmp_path / "weights.safetensors")]
        assert ck.config == config
        for name, expected in written.items():
            assert_bit_exact(torch.from_dlpack(ck[name]), expected)


def test_no_config_gives_none(tmp_path):
    safetensors.torch.save_file({"a": random_tensor(torch.float32, (2,))},
                                tmp_path / "model.safetensors")
    assert hfport.open(tmp_path).config is None


def test_missing_shard(folder_copy):
    folder, index = folder_copy
    shard = sorted(set(index["weight_map"].values()))[1]
    (folder / shard).unlink()
    with pytest.raises(errors.MissingShardError,
                       match=quoted(folder / INDEX) + ": shard " + quoted(shard) +
                       " does not exist in " + quoted(folder)):
        hfport.open(folder)


def test_index_names_a_tensor_its_shard_lacks(folder_copy):
    folder, index = folder_copy
    shard = min(set(index["weight_map"].values()))
    index["weight_map"]["model.ghost.weight"] = shard
    write_index(folder, index)
    with pytest.raises(errors.ShardTensorMissingError,
                       match=quoted(folder / INDEX) + " puts tensor 'model.ghost.weight' in "
                       "shard " + quoted(shard) + ", but that shard has no such tensor"):
        hfport.open(folder)


def test_index_puts_a_tensor_in_the_wrong_shard(folder_copy):
    folder, index = folder_copy
    shards = sorted(set(index["weight_map"].values()))
    moved = first_tensor_of_shard(index, shards[0])
    index["weight_map"][moved] = shards[1]
    write_index(folder, index)
    with pytest.raises(errors.ShardTensorMissingError,
                       match=f"puts tensor '{moved}' in shard '{shards[1]}', but that shard"):
        hfport.open(folder)


def test_tensor_in_two_shards(folder_copy, saved_model):
    folder, index = folder_copy
    _, state = saved_model
    shards = sorted(set(index["weight_map"].values()))
    twice = first_tensor_of_shard(index, shards[0])
    safetensors.torch.save_file({twice: state[twice], "extra.weight": torch.ones(2)},
                                folder / "extra.safetensors")
    index["weight_map"]["extra.weight"] = "extra.safetensors"
    write_index(folder, index)
    with pytest.raises(errors.DuplicateTensorError,
                       match=quoted(folder / INDEX) + f": tensor '{twice}' is in two shards, ") as e:
        hfport.open(folder)
    both = {f"'{folder / shards[0]}'", f"'{folder / 'extra.safetensors'}'"}
    assert {part.strip() for part in str(e.value).split("two shards, ")[1].split(" and ")} == both


def test_shard_holds_a_tensor_the_index_does_not_list(folder_copy):
    folder, index = folder_copy
    shards = sorted(set(index["weight_map"].values()))
    names = sorted(n for n, s in index["weight_map"].items() if s == shards[0])
    assert len(names) >= 2  # the shard stays in the index through its other tensors
    del index["weight_map"][names[-1]]
    write_index(folder, index)
    with pytest.raises(errors.ShardIndexError,
                       match=quoted(folder / INDEX) + ": shard " + quoted(folder / shards[0]) +
                       f" holds tensor '{names[-1]}', which the index does not list"):
        hfport.open(folder)


@pytest.mark.parametrize("bad", ["../outside.safetensors", "sub/../../outside.safetensors",
                                 "ABSOLUTE", ""])
def test_shard_path_outside_the_folder(folder_copy, bad):
    folder, index = folder_copy
    outside = folder.parent / "outside.safetensors"
    safetensors.torch.save_file({"model.escape.weight": torch.ones(3)}, outside)
    bad = str(outside) if bad == "ABSOLUTE" else bad
    index["weight_map"]["model.escape.weight"] = bad
    write_index(folder, index)
    expected = ("contains '..'; shards must stay inside the checkpoint folder" if ".." in bad
                else "must be a relative path inside the checkpoint folder")
    with pytest.raises(errors.ShardPathError,
                       match=quoted(folder / INDEX) + ": shard path " + quoted(bad) + " " +
                       expected):
        hfport.open(folder)


def test_symlink_out_of_the_folder(folder_copy):
    folder, index = folder_copy
    outside = folder.parent / "elsewhere" / "secret.safetensors"
    outside.parent.mkdir()
    safetensors.torch.save_file({"model.escape.weight": torch.ones(3)}, outside)
    os.symlink(outside, folder / "link.safetensors")
    index["weight_map"]["model.escape.weight"] = "link.safetensors"
    write_index(folder, index)
    with pytest.raises(errors.ShardPathError,
                       match=quoted(folder / INDEX) + ": shard 'link.safetensors' resolves to " +
                       quoted(outside.resolve()) + ", outside the checkpoint folder " +
                       quoted(folder.resolve())):
        hfport.open(folder)


def test_symlink_to_a_sibling_folder_with_a_shared_prefix(folder_copy):
    """`model2/` starts with `model` as a string but is not inside `model/`."""
    folder, index = folder_copy
    sibling = folder.parent / (folder.name + "2")
    sibling.mkdir()
    safetensors.torch.save_file({"model.escape.weight": torch.ones(3)}, sibling / "x.safetensors")
    os.symlink(sibling / "x.safetensors", folder / "link.safetensors")
    index["weight_map"]["model.escape.weight"] = "link.safetensors"
    write_index(folder, index)
    with pytest.raises(errors.ShardPathError, match="outside the checkpoint folder"):
        hfport.open(folder)


def test_symlink_inside_the_folder_is_fine(folder_copy, saved_model):
    folder, index = folder_copy
    _, state = saved_model
    shard = min(set(index["weight_map"].values()))
    (folder / "real").mkdir()
    (folder / shard).rename(folder / "real" / shard)
    os.symlink(folder / "real" / shard, folder / shard)
    ck = hfport.open(folder)
    name = first_tensor_of_shard(index, shard)
    assert_bit_exact(torch.from_dlpack(ck[name]), state[name])


def test_index_naming_a_pickle_shard(folder_copy):
    folder, index = folder_copy
    marker = folder.parent / "unpickled"
    (folder / "extra.bin").write_bytes(pickle_trap(marker))
    index["weight_map"]["model.extra.weight"] = "extra.bin"
    write_index(folder, index)
    with pytest.raises(errors.UnsupportedFormatError,
                       match=quoted(folder / "extra.bin") + r" is a pickle checkpoint \(.bin\)"
                       ) as caught:
        hfport.open(folder)
    assert "hfport convert-pickle" in str(caught.value)
    assert not marker.exists()


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "parse error"),
    ('{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}', "duplicate key 'a'"),
    ("[]", 'must be a JSON object with a "weight_map" object'),
    ('{"metadata": {"total_size": 4}}', 'must be a JSON object with a "weight_map" object'),
    ('{"weight_map": ["model-00001-of-00002.safetensors"]}', 'with a "weight_map" object'),
    ('{"weight_map": {"a": 3}}', r"weight_map\['a'\] must be a shard file name, found 3"),
    ('{"weight_map": {}, "metadata": []}', '"metadata" must be an object'),
], ids=["not_json", "duplicate_key", "array", "no_weight_map", "weight_map_list",
        "shard_not_string", "metadata_not_object"])
def test_broken_index(folder_copy, text, message):
    folder, _ = folder_copy
    (folder / INDEX).write_text(text)
    for target in (folder, folder / INDEX):
        with pytest.raises(errors.ShardIndexError, match=quoted(folder / INDEX) + ": .*" + message):
            hfport.open(target)


def test_folder_with_only_pickle_weights(tmp_path):
    marker = tmp_path / "unpickled"
    (tmp_path / "pytorch_model.bin").write_bytes(pickle_trap(marker))
    with pytest.raises(errors.UnsupportedFormatError,
                       match=quoted(tmp_path) + r" holds only pickle checkpoints \(pytorch_model"
                       r"\.bin\)") as caught:
        hfport.open(tmp_path)
    assert "hfport convert-pickle" in str(caught.value)
    assert str(tmp_path / "pytorch_model.bin") in str(caught.value)
    assert not marker.exists()


def test_folder_with_only_a_pkl_file(tmp_path):
    (tmp_path / "weights.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(errors.UnsupportedFormatError, match=r"holds only pickle checkpoints \(weights"
                       r"\.pkl\)"):
        hfport.open(tmp_path)


def test_folder_with_two_files_and_no_index(tmp_path):
    for name in ("b.safetensors", "a.safetensors"):
        safetensors.torch.save_file({"x": torch.ones(2)}, tmp_path / name)
    with pytest.raises(errors.FileError,
                       match=quoted(tmp_path) + r" holds 2 safetensors files \(a.safetensors, "
                       r"b.safetensors\) but no model.safetensors.index.json"):
        hfport.open(tmp_path)


def test_empty_folder(tmp_path):
    with pytest.raises(errors.FileError,
                       match=quoted(tmp_path) + " holds no .safetensors file and no index.json"):
        hfport.open(tmp_path)


def test_nonexistent_path(tmp_path):
    missing = tmp_path / "no" / "such" / "model"
    with pytest.raises(errors.FileError, match="no such file or folder " + quoted(missing)):
        hfport.open(missing)


@pytest.mark.parametrize(("text", "message"), [
    ('{"hidden_size": 32,', "parse error"),
    ('["hidden_size", 32]', "config must be a JSON object"),
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ("\ufeff{}", "byte order mark"),
], ids=["not_json", "array", "duplicate_key", "byte_order_mark"])
def test_invalid_config(folder_copy, text, message):
    folder, _ = folder_copy
    (folder / "config.json").write_text(text, encoding="utf-8")
    with pytest.raises(errors.ConfigError,
                       match=quoted(folder / "config.json") + ": .*" + message):
        hfport.open(folder)


# Issue 12, defect 3: open(2) on a FIFO blocks until a writer appears, so hfport.open hung on a
# FIFO named like a checkpoint, a shard or a config. Each case runs in a child process with a
# deadline, so a regression fails here instead of hanging the suite.
def open_in_child(path: Path) -> str:
    script = ("import hfport, sys\n"
              "try:\n    hfport.open(sys.argv[1])\nexcept hfport.errors.Error as e:\n"
              "    print(type(e).__name__ + ': ' + str(e))\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("what", ["file", "shard", "index", "config"])
def test_fifo_is_refused_without_blocking(folder_copy, what):
    folder, index = folder_copy
    fifo = {"file": folder / "lone.safetensors", "index": folder / INDEX,
            "config": folder / "config.json",
            "shard": folder / max(index["weight_map"].values())}[what]
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    said = open_in_child(fifo if what == "file" else folder)
    assert said == f"FileError: '{fifo}' is a FIFO (named pipe), not a regular file; hfport " \
                   "reads only regular files"


def test_config_that_is_a_folder_says_so(folder_copy):
    folder, _ = folder_copy
    (folder / "config.json").unlink()
    (folder / "config.json").mkdir()
    with pytest.raises(errors.FileError, match=quoted(folder / "config.json") + " is a directory"):
        hfport.open(folder)


def test_symlink_loops_are_not_called_missing(folder_copy):
    folder, index = folder_copy
    loop = folder.parent / "loop.safetensors"
    loop.symlink_to(loop.name)
    with pytest.raises(errors.FileError, match=quoted(loop) + " is a symbolic link loop"):
        hfport.open(loop)
    shard = folder / min(index["weight_map"].values())
    shard.unlink()
    shard.symlink_to(shard.name)
    with pytest.raises(errors.ShardPathError, match=f"shard '{shard.name}' is a symbolic link loop"):
        hfport.open(folder)


# Issue 12, defect 5: the OS reads a path up to its first NUL, so "a.safetensors\0.evil" opened
# a.safetensors. Control characters in a shard name are refused, and the message shows the name
# whole (a NUL used to end it).
@pytest.mark.parametrize("bad", ["\0.evil", "\n", "\x1b[31m", "\x7f"])
def test_control_characters_in_a_shard_name(folder_copy, bad):
    folder, index = folder_copy
    name = next(iter(index["weight_map"]))
    shard = index["weight_map"][name]
    index["weight_map"][name] = shard + bad
    write_index(folder, index)
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in bad)
    with pytest.raises(errors.ShardPathError) as caught:
        hfport.open(folder)
    message = str(caught.value)
    assert f"shard path '{shard}{shown}' contains a control character at byte {len(shard)}" \
        in message
    assert "\0" not in message and message.endswith("shard paths are plain file names")
