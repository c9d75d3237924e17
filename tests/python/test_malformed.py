"""Crafted malformed safetensors files: each breaks one rule and must raise its own error class,
with a message that names the file (and the tensor) and says what was expected and what was found.

Every case starts from one valid layout (`VALID`, checked to open) and changes one thing, so a
case fails for the reason it names and no other.
"""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile

import hfport
import pytest
import safetensors.torch
import torch
from conftest import pickle_trap, quoted, random_tensor, safetensors_bytes
from hfport import errors

# Two tensors: w is F32 [2, 3] (24 bytes), b is I16 [4] (8 bytes); 32 data bytes.
W = {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
B = {"dtype": "I16", "shape": [4], "data_offsets": [24, 32]}
VALID = {"__metadata__": {"format": "pt"}, "w": W, "b": B}
DATA = bytes(range(1, 33))


def with_entry(name: str, **changes) -> dict:
    """VALID with entry `name` changed (a value of None deletes the field)."""
    header = json.loads(json.dumps(VALID))
    for field, value in changes.items():
        if value is None:
            del header[name][field]
        else:
            header[name][field] = value
    return header


def valid_with(**top) -> dict:
    header = json.loads(json.dumps(VALID))
    header.update(top)
    return header


def raw_json(text: str, data: bytes = DATA) -> bytes:
    return safetensors_bytes(text.encode("utf-8"), data)


def valid_file() -> bytes:
    return safetensors_bytes(VALID, DATA)


def deep_nesting(levels: int) -> bytes:
    """A header whose __metadata__ value nests `levels` arrays deep (depth levels + 2)."""
    inner = "[" * levels + "]" * levels
    return raw_json('{"__metadata__": {"x": ' + inner + '}, "w": ' + json.dumps(W) + "}",
                    DATA[:24])


# (id, file bytes, error class, regex on the message after the quoted file name)
CASES = [
    ("length_beyond_file", safetensors_bytes(b'{"a":1}', length=1000),
     errors.HeaderLengthError,
     r"header length 1000 points beyond the end of the file \(15 bytes, so at most 7 header"),
    ("shorter_than_8", b"\x05\x00\x00\x00\x00", errors.HeaderLengthError,
     "file is 5 bytes; a safetensors file starts with an 8-byte header length"),
    ("empty_file", b"", errors.HeaderLengthError, "file is 0 bytes"),
    ("header_over_100mb", safetensors_bytes(b"{}", length=100_000_001),
     errors.HeaderTooLargeError,
     "header length 100000001 exceeds the limit of 100000000 bytes"),
    ("header_length_2_64_minus_1", b"\xff" * 8 + b"{}", errors.HeaderTooLargeError,
     f"header length {2**64 - 1} exceeds the limit"),
    ("invalid_utf8", safetensors_bytes(b'{"w\xff": 1}'), errors.HeaderEncodingError,
     "header invalid UTF-8 at byte 3"),
    ("overlong_utf8", safetensors_bytes(b'{"\xc0\xaf": 1}'), errors.HeaderEncodingError,
     "invalid UTF-8 at byte 2"),
    ("surrogate_utf8", safetensors_bytes(b'{"ab\xed\xa0\x80": 1}'), errors.HeaderEncodingError,
     "invalid UTF-8 at byte 4"),
    ("cut_utf8", safetensors_bytes(b'{"a": 1}\xe2\x82'), errors.HeaderEncodingError,
     "invalid UTF-8 at byte 8"),
    ("invalid_json", raw_json('{"w": {"dtype": "F32",'), errors.HeaderJsonError,
     "header is not valid JSON"),
    ("json_with_comment", raw_json('{/* c */ "__metadata__": {}}', b""), errors.HeaderJsonError,
     "header is not valid JSON"),
    ("json_nan", raw_json('{"__metadata__": {"a": NaN}}', b""), errors.HeaderJsonError,
     "header is not valid JSON"),
    ("text_after_object", raw_json('{"__metadata__": {}} {}', b""), errors.HeaderJsonError,
     "header is not valid JSON"),
    ("empty_header", safetensors_bytes(b""), errors.HeaderJsonError, "header is not valid JSON"),
    ("byte_order_mark", safetensors_bytes(b"\xef\xbb\xbf" + json.dumps(VALID).encode(), DATA),
     errors.HeaderJsonError,
     "header is not valid JSON: a UTF-8 byte order mark at byte 0, which JSON does not allow"),
    ("nul_after_object",
     safetensors_bytes(json.dumps(VALID).encode() + b'\x00{"x": 1}', DATA),
     errors.HeaderJsonError,
     f"header is not valid JSON: a NUL byte at byte {len(json.dumps(VALID))}, which JSON"),
    ("nul_padding", safetensors_bytes(b"{}" + b"\x00" * 6), errors.HeaderJsonError,
     "header is not valid JSON: a NUL byte at byte 2"),
    ("header_is_array", raw_json("[1, 2]", b""), errors.HeaderJsonError,
     "header must be a JSON object, found an array"),
    ("header_is_string", raw_json('"hello"', b""), errors.HeaderJsonError,
     "header must be a JSON object, found a string"),
    ("header_is_number", raw_json("42", b""), errors.HeaderJsonError,
     "header must be a JSON object, found a number"),
    ("header_is_null", raw_json("null", b""), errors.HeaderJsonError,
     "header must be a JSON object, found null"),
    ("nesting_too_deep", deep_nesting(100), errors.HeaderJsonError,
     "header is not valid JSON: nesting deeper than 64 levels"),
    ("nesting_a_million_deep", safetensors_bytes(b"[" * 1_000_000 + b"]" * 1_000_000),
     errors.HeaderJsonError, "nesting deeper than 64 levels"),
    ("duplicate_top_level_key",
     raw_json('{"w": ' + json.dumps(W) + ', "w": ' + json.dumps(W) + "}", DATA[:24]),
     errors.DuplicateKeyError, "header duplicate key 'w'"),
    ("duplicate_key_escaped",  # "\u0077" is "w": the same key spelled two ways
     raw_json('{"w": ' + json.dumps(W) + ', "\\u0077": ' + json.dumps(W) + "}", DATA[:24]),
     errors.DuplicateKeyError, "header duplicate key 'w'"),
    ("duplicate_key_in_entry",
     raw_json('{"w": {"dtype": "F32", "dtype": "F16", "shape": [2, 3], '
              '"data_offsets": [0, 24]}}', DATA[:24]),
     errors.DuplicateKeyError, "header duplicate key 'dtype'"),
    ("duplicate_key_in_metadata",
     raw_json('{"__metadata__": {"k": "1", "k": "2"}}', b""),
     errors.DuplicateKeyError, "header duplicate key 'k'"),
    ("metadata_not_object", safetensors_bytes(valid_with(__metadata__=["a"]), DATA),
     errors.MetadataError, "__metadata__ must be an object of strings, found an array"),
    ("metadata_is_string", safetensors_bytes(valid_with(__metadata__="pt"), DATA),
     errors.MetadataError, "__metadata__ must be an object of strings, found a string"),
    ("metadata_number_value", safetensors_bytes(valid_with(__metadata__={"step": 7}), DATA),
     errors.MetadataError, r"__metadata__\['step'\] must be a string, found a number"),
    ("metadata_object_value", safetensors_bytes(valid_with(__metadata__={"a": {}}), DATA),
     errors.MetadataError, r"__metadata__\['a'\] must be a string, found an object"),
    ("entry_not_object", safetensors_bytes(valid_with(b=[24, 32]), DATA),
     errors.TensorEntryError,
     r"tensor 'b' must be an object \{dtype, shape, data_offsets\}, found an array"),
    ("entry_is_string", safetensors_bytes(valid_with(b="F32"), DATA),
     errors.TensorEntryError, "tensor 'b' must be an object .* found a string"),
    ("missing_dtype", safetensors_bytes(with_entry("w", dtype=None), DATA),
     errors.TensorEntryError, "tensor 'w' has no 'dtype' field"),
    ("missing_shape", safetensors_bytes(with_entry("w", shape=None), DATA),
     errors.TensorEntryError, "tensor 'w' has no 'shape' field"),
    ("missing_data_offsets", safetensors_bytes(with_entry("b", data_offsets=None), DATA),
     errors.TensorEntryError, "tensor 'b' has no 'data_offsets' field"),
    ("extra_field", safetensors_bytes(with_entry("w", strides=[3, 1]), DATA),
     errors.TensorEntryError,
     r"tensor 'w' has an unexpected field 'strides' \(expected only dtype, shape, data_offsets\)"),
    ("unknown_dtype", safetensors_bytes(with_entry("w", dtype="F128"), DATA),
     errors.DTypeError, "tensor 'w' has unknown dtype 'F128'; known dtypes: BOOL, U8, .*F8_E5M2"),
    ("lowercase_dtype", safetensors_bytes(with_entry("w", dtype="f32"), DATA),
     errors.DTypeError, "tensor 'w' has unknown dtype 'f32'"),
    ("dtype_not_string", safetensors_bytes(with_entry("w", dtype=4), DATA),
     errors.DTypeError, "tensor 'w': dtype must be a string, found a number"),
    ("shape_not_array", safetensors_bytes(with_entry("b", shape=4), DATA),
     errors.ShapeError, ("tensor 'b': shape must be an array of non-negative integers, found a "
                        "number")),
    ("negative_shape", safetensors_bytes(with_entry("w", shape=[2, -3]), DATA),
     errors.ShapeError, (r"tensor 'w': shape\[1\] must be a non-negative integer below 2\^63, "
                        "found a negative number -3")),
    ("float_shape", safetensors_bytes(with_entry("w", shape=[2.5, 3]), DATA),
     errors.ShapeError, r"tensor 'w': shape\[0\] .* found a non-integer number 2.5"),
    ("string_shape", safetensors_bytes(with_entry("w", shape=[2, "3"]), DATA),
     errors.ShapeError, r"tensor 'w': shape\[1\] .* found a string \"3\""),
    ("dim_2_63", safetensors_bytes(with_entry("w", shape=[2**63, 1]), DATA),
     errors.ShapeError, rf"tensor 'w': shape\[0\] .*below 2\^63, found a number {2**63}"),
    ("overflowing_shape", safetensors_bytes(with_entry("w", shape=[2**62, 2**62]), DATA),
     errors.ShapeError, rf"tensor 'w': shape \[{2**62},{2**62}\] overflows"),
    ("zero_dim_beside_overflow", safetensors_bytes(with_entry("w", shape=[0, 2**62, 2**62],
                                                            data_offsets=[0, 0]), DATA[24:]),
     errors.ShapeError, rf"tensor 'w': shape \[0,{2**62},{2**62}\] overflows"),
    ("shape_wraps_to_zero", safetensors_bytes(with_entry("w", shape=[2**32, 2**32],
                                                       data_offsets=[0, 0]), DATA[24:]),
     errors.ShapeError, rf"tensor 'w': shape \[{2**32},{2**32}\] overflows"),
    ("overflowing_bytes", safetensors_bytes(with_entry("w", shape=[2**61, 2]), DATA),
     errors.ShapeError, rf"tensor 'w': shape \[{2**61},2\] overflows"),
    ("offsets_wrong_length", safetensors_bytes(with_entry("w", data_offsets=[0, 12, 24]), DATA),
     errors.OffsetsError, r"tensor 'w': data_offsets must be \[begin, end\], found \[0,12,24\]"),
    ("offsets_one_value", safetensors_bytes(with_entry("w", data_offsets=[24]), DATA),
     errors.OffsetsError, r"tensor 'w': data_offsets must be \[begin, end\], found \[24\]"),
    ("offsets_not_array", safetensors_bytes(with_entry("w", data_offsets="0-24"), DATA),
     errors.OffsetsError, r"tensor 'w': data_offsets must be \[begin, end\], found \"0-24\""),
    ("offsets_negative", safetensors_bytes(with_entry("w", data_offsets=[-24, 0]), DATA),
     errors.OffsetsError,
     r"tensor 'w': data_offsets must be non-negative integers, found \[-24,0\]"),
    ("offsets_float", safetensors_bytes(with_entry("w", data_offsets=[0.0, 24.0]), DATA),
     errors.OffsetsError, "tensor 'w': data_offsets must be non-negative integers"),
    ("offsets_reversed", safetensors_bytes(with_entry("b", data_offsets=[32, 24]), DATA),
     errors.OffsetsError, r"tensor 'b': data_offsets \[32,24\] end before they begin"),
    ("size_not_shape", safetensors_bytes(with_entry("w", shape=[2, 2]), DATA),
     errors.OffsetsError, (r"tensor 'w' has shape \[2, 2\] and dtype F32, so 16 bytes, but "
                          r"data_offsets \[0,24\] span 24 bytes")),
    ("size_not_dtype", safetensors_bytes(with_entry("b", dtype="I32"), DATA),
     errors.OffsetsError, (r"tensor 'b' has shape \[4\] and dtype I32, so 16 bytes, but "
                          r"data_offsets \[24,32\] span 8 bytes")),
    ("not_starting_at_0",
     safetensors_bytes({"w": {**W, "data_offsets": [4, 28]}, "b": {**B, "data_offsets": [28, 36]}},
                       bytes(36)),
     errors.LayoutError, "the first tensor in the data buffer, 'w', starts at byte 4; expected 0"),
    ("gap", safetensors_bytes(with_entry("b", data_offsets=[28, 36]), bytes(36)),
     errors.LayoutError,
     r"tensor 'b' occupies \[28, 36\) but 'w' ends at byte 24: a gap of 4 bytes"),
    ("overlap", safetensors_bytes(with_entry("b", data_offsets=[16, 24]), DATA[:24]),
     errors.LayoutError, (r"tensor 'b' occupies \[16, 24\) but 'w' ends at byte 24: the two "
                         "overlap")),
    ("same_offsets", safetensors_bytes(with_entry("b", dtype="F32", shape=[2, 3],
                                                  data_offsets=[0, 24]), DATA[:24]),
     errors.LayoutError, r"occupies \[0, 24\) but '[wb]' ends at byte 24: the two overlap"),
    ("offsets_out_of_bounds",
     safetensors_bytes(with_entry("b", shape=[1000], data_offsets=[24, 2024]), DATA),
     errors.FileSizeError,
     r"file is truncated: tensor 'b' \[24, 2024\) ends beyond the 32-byte data buffer"),
    ("trailing_bytes", safetensors_bytes(VALID, DATA + b"\x00" * 5), errors.FileSizeError,
     r"5 trailing bytes after the last tensor \(file is \d+ bytes; 8 \+ header \d+ \+ data 32"),
    ("truncated", safetensors_bytes(VALID, DATA)[:-3], errors.FileSizeError,
     r"file is truncated: tensor 'b' \[24, 32\) ends beyond the 29-byte data buffer"),
    ("header_only_no_data", safetensors_bytes(VALID), errors.FileSizeError,
     r"file is truncated: tensor 'w' \[0, 24\) ends beyond the 0-byte data buffer"),
]

CASE_IDS = [case[0] for case in CASES]


def test_the_unmodified_layout_is_valid(tmp_path):
    """The base every case changes opens, and reads back the bytes it was given."""
    path = tmp_path / "valid.safetensors"
    path.write_bytes(valid_file())
    ck = hfport.open(path)
    assert ck.keys() == ["b", "w"]
    assert ck.metadata() == {"format": "pt"}
    assert torch.from_dlpack(ck["w"]).view(torch.uint8).flatten().tolist() == list(DATA[:24])
    assert torch.from_dlpack(ck["b"]).view(torch.uint8).tolist() == list(DATA[24:])
    # Just under the depth limit the parser gets through, and the next rule speaks instead.
    shallow = tmp_path / "shallow.safetensors"
    shallow.write_bytes(deep_nesting(62))
    with pytest.raises(errors.MetadataError, match=r"__metadata__\['x'\] must be a string, found an "
                                                   "array"):
        hfport.open(shallow)


@pytest.mark.parametrize(("case", "content", "error", "message"), CASES, ids=CASE_IDS)
def test_malformed_file_raises_its_own_error(tmp_path, case, content, error, message):
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(content)
    with pytest.raises(errors.HeaderError, match=message) as caught:
        hfport.open(path)
    assert type(caught.value) is error, f"{case}: got {type(caught.value).__name__}"
    assert str(caught.value).startswith(f"'{path}'")


def test_at_least_25_distinct_malformed_cases():
    assert len(set(CASE_IDS)) == len(CASES) >= 25
    covered = {error for _, _, error, _ in CASES}
    assert covered == {errors.HeaderLengthError, errors.HeaderTooLargeError,
                       errors.HeaderEncodingError, errors.HeaderJsonError, errors.DuplicateKeyError,
                       errors.MetadataError, errors.TensorEntryError, errors.DTypeError,
                       errors.ShapeError, errors.OffsetsError, errors.LayoutError,
                       errors.FileSizeError}


def test_safetensors_itself_refuses_the_cases(tmp_path):
    """The crafted files break the reference reader's rules too, not only hfport's."""
    # safetensors keeps the last of two duplicate keys and ignores unknown fields; hfport refuses
    # both (a header that can be read two ways), so those cases are hfport's own.
    stricter = {"duplicate_top_level_key", "duplicate_key_escaped", "duplicate_key_in_metadata",
                "extra_field"}
    for case, content, _, _ in CASES:
        if case not in stricter:
            path = tmp_path / f"{case}.safetensors"
            path.write_bytes(content)
            with pytest.raises(Exception):  # noqa: B017 - safetensors' own error types vary
                safetensors.torch.load_file(path)


CRASH_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import hfport
    for path in sorted(Path(sys.argv[1]).iterdir()):
        try:
            hfport.open(path)
        except hfport.errors.Error as e:
            print(path.stem, type(e).__name__, flush=True)
        else:
            print(path.stem, "OPENED", flush=True)
""")


def test_malformed_set_never_crashes_the_interpreter(tmp_path):
    for case, content, _, _ in CASES:
        (tmp_path / f"{case}.safetensors").write_bytes(content)
    result = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(tmp_path)],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"exit {result.returncode} (negative: killed by a signal)\n" \
                                   f"{result.stdout}\n{result.stderr}"
    seen = dict(line.split() for line in result.stdout.splitlines())
    assert seen == {case: error.__name__ for case, _, error, _ in CASES}


# --- pickle checkpoints are refused, never unpickled -------------------------------------------


def test_the_pickle_trap_works(tmp_path):
    marker = tmp_path / "sprung"
    pickle.loads(pickle_trap(marker))
    assert marker.is_dir()


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth", ".ckpt", ".pkl"])
def test_pickle_named_file_is_refused_unread(tmp_path, suffix):
    marker = tmp_path / "unpickled"
    path = tmp_path / f"pytorch_model{suffix}"
    path.write_bytes(pickle_trap(marker))
    with pytest.raises(errors.UnsupportedFormatError,
                       match=quoted(path) + rf" is a pickle checkpoint \({suffix}\)") as caught:
        hfport.open(path)
    message = str(caught.value)
    assert "never unpickles" in message
    assert f"hfport convert-pickle '{path}' <out_dir>" in message
    assert "save_pretrained" in message
    assert not marker.exists()


def test_pickle_name_is_refused_even_when_absent(tmp_path):
    path = tmp_path / "missing.bin"
    with pytest.raises(errors.UnsupportedFormatError, match="hfport convert-pickle"):
        hfport.open(path)


def test_torch_zip_named_safetensors_is_refused(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.safetensors"
    with zipfile.ZipFile(path, "w") as archive:  # the layout torch.save writes
        archive.writestr("archive/data.pkl", pickle_trap(marker))
        archive.writestr("archive/version", "3\n")
    with pytest.raises(errors.UnsupportedFormatError,
                       match=quoted(path) + " holds a pickle or torch zip archive, not "
                                            "safetensors") as caught:
        hfport.open(path)
    assert "hfport convert-pickle" in str(caught.value)
    assert not marker.exists()


def test_real_torch_save_named_safetensors_is_refused(tmp_path):
    path = tmp_path / "weights.safetensors"
    torch.save({"w": random_tensor(torch.float32, (3,))}, path)
    with pytest.raises(errors.UnsupportedFormatError, match="hfport convert-pickle"):
        hfport.open(path)


def test_raw_pickle_named_safetensors_is_refused(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "weights.safetensors"
    path.write_bytes(pickle_trap(marker))
    assert path.read_bytes()[:2] == b"\x80\x04"
    with pytest.raises(errors.UnsupportedFormatError, match="holds a pickle") as caught:
        hfport.open(path)
    assert "hfport convert-pickle" in str(caught.value)
    assert not marker.exists()


def test_error_classes_keep_their_parents(tmp_path):
    path = tmp_path / "gap.safetensors"
    path.write_bytes({c[0]: c[1] for c in CASES}["gap"])
    with pytest.raises(errors.HeaderError):
        hfport.open(path)
    with pytest.raises(errors.Error):
        hfport.open(path)
    assert issubclass(errors.FileError, OSError)
    assert issubclass(errors.HeaderError, errors.Error)
    assert not issubclass(errors.UnsupportedFormatError, errors.HeaderError)
    with pytest.raises(OSError, match="no such file or folder"):
        hfport.open(tmp_path / "nothing_here.safetensors")


# Issue 12, defect 1: a safetensors file starts with its header length, and lengths such as 640
# (bytes 0x80 0x02) or 896..1408 spell the pickle PROTO opcode. safetensors reads those files;
# hfport refused them as pickles, even the ones its own writer produced.
@pytest.mark.parametrize("writer", ["safetensors", "hfport"])
def test_header_lengths_that_spell_a_pickle_magic_are_read(tmp_path, writer):
    lengths = set()
    for name_length in range(500, 1500):
        path = tmp_path / f"{name_length}.safetensors"
        value = random_tensor(torch.float32, (2,))
        if writer == "safetensors":
            safetensors.torch.save_file({"n" * name_length: value}, path)
        else:
            hfport._hfport.write_safetensors(str(path), [("n" * name_length,
                                                          hfport.from_dlpack(value))])
        (length,) = struct.unpack("<Q", path.read_bytes()[:8])
        lengths.add(length)
        ck = hfport.open(path)
        assert torch.equal(torch.from_dlpack(ck["n" * name_length]), value), name_length
        path.unlink()
    # Every 8-aligned length from 576 to 1552 was written, the four pickle-looking ones included.
    assert {640, 896, 1152, 1408} <= lengths


def test_length_640_file_is_read_as_safetensors_reads_it(tmp_path):
    path = tmp_path / "m.safetensors"
    hfport._hfport.write_safetensors(str(path), [("n" * 580, hfport.from_dlpack(torch.zeros(2)))])
    assert path.read_bytes()[:2] == b"\x80\x02"
    with safetensors.safe_open(path, "pt") as f:
        expected = f.get_tensor("n" * 580)
    assert torch.equal(torch.from_dlpack(hfport.open(path)["n" * 580]), expected)


# Issue 12: an empty tensor may have dimensions whose product overflows, as long as its element
# strides fit (torch's rule); safetensors and torch read [0, 2^31, 2^31].
def test_empty_tensor_with_huge_dimensions_is_read(tmp_path):
    path = tmp_path / "empty.safetensors"
    shape = [0, 2**31, 2**31]
    path.write_bytes(safetensors_bytes({"e": {"dtype": "F32", "shape": shape,
                                              "data_offsets": [0, 0]}}))
    with safetensors.safe_open(path, "pt") as f:
        expected = f.get_tensor("e")
    got = torch.from_dlpack(hfport.open(path)["e"])
    assert got.shape == expected.shape == tuple(shape)
    assert got.stride() == torch.empty(shape).stride()
    assert hfport.open(path)["e"][:, 5].shape == (0, 2**31)
    path.write_bytes(safetensors_bytes({"e": {"dtype": "F32", "shape": [0, 2**62, 2**62],
                                              "data_offsets": [0, 0]}}))
    with pytest.raises(errors.ShapeError, match="overflows"):
        hfport.open(path)
    with pytest.raises(RuntimeError, match="overflow"):
        torch.empty(0, 2**62, 2**62)
