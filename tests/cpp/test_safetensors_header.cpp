// parse_safetensors_header: golden files written by the safetensors library itself, one test per
// validation rule (the exact error class, and a message naming the file, the tensor and the
// expected and found values), a round-trip property over random valid headers, and random byte
// mutations of a valid file that must parse or throw a HeaderError, never anything else.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors_file.h"
#include "core/safetensors_header.h"
#include "expect_error.h"
#include "test_files.h"

namespace {

using hfport::DType;
using hfport::SafetensorsHeader;
using hfport::TensorInfo;
using namespace hfport_test;

const std::string kPath = "ckpt/model.safetensors";
const std::string kWhere = "'ckpt/model.safetensors'";

SafetensorsHeader parse(const Bytes& bytes, const std::string& path = kPath) {
  return hfport::parse_safetensors_header(reinterpret_cast<const std::byte*>(bytes.data()),
                                          bytes.size(), path);
}

// A file whose header is `json` (as written) followed by `data_size` zero bytes.
Bytes file_with(const std::string& json, size_t data_size) {
  return safetensors_file_bytes(json, Bytes(data_size, 0));
}

Bytes with_length_field(uint64_t n, size_t bytes_after) {
  Bytes out(8 + bytes_after, ' ');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  return out;
}

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
Bytes text_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// ---------------------------------------------------------------------------------------------
// Golden files: bytes written by safetensors 0.8 (`safetensors.torch.save`), copied here.

// save({"b": int16 [[1,-2,3],[4,5,-32768]], "a": f32 [1.0, -2.5], "c": bf16 [1.0],
//       "e": f16 zeros (0, 3)}, metadata={"format": "pt"})
const std::string kGoldenHeader =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
    R"("c":{"dtype":"BF16","shape":[1],"data_offsets":[8,10]},)"
    R"("e":{"dtype":"F16","shape":[0,3],"data_offsets":[10,10]},)"
    R"("b":{"dtype":"I16","shape":[2,3],"data_offsets":[10,22]}}  )";
const Bytes kGoldenData = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0,  // a
                           0x80, 0x3f,                                      // c
                           0x01, 0x00, 0xfe, 0xff, 0x03, 0x00,              // b
                           0x04, 0x00, 0x05, 0x00, 0x00, 0x80};

Bytes golden_file() {
  return Bytes{0x00, 0x01, 0, 0, 0, 0, 0, 0} + text_bytes(kGoldenHeader) + kGoldenData;
}

TEST(SafetensorsGolden, FileWrittenBySafetensorsParses) {
  ASSERT_EQ(kGoldenHeader.size(), 256u);
  const SafetensorsHeader h = parse(golden_file());
  EXPECT_EQ(h.header_size, 256u);
  EXPECT_EQ(h.data_offset(), 264u);
  EXPECT_EQ(h.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(h.tensors.size(), 4u);
  struct Want {
    const char* name;
    DType dtype;
    hfport::Shape shape;
    uint64_t begin, end;
  };
  const Want want[] = {{"a", DType::F32, {2}, 0, 8},
                       {"b", DType::I16, {2, 3}, 10, 22},
                       {"c", DType::BF16, {1}, 8, 10},
                       {"e", DType::F16, {0, 3}, 10, 10}};  // sorted by name, not by offset
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(h.tensors[i].name, want[i].name);
    EXPECT_EQ(h.tensors[i].dtype, want[i].dtype);
    EXPECT_EQ(h.tensors[i].shape, want[i].shape);
    EXPECT_EQ(h.tensors[i].begin, want[i].begin);
    EXPECT_EQ(h.tensors[i].end, want[i].end);
  }
}

TEST(SafetensorsGolden, TestWriterReproducesSafetensorsBytes) {
  // The writer the other tests use agrees byte for byte with the safetensors library.
  const std::vector<TensorBytes> tensors = {
      {"a", "F32", {2}, Bytes(kGoldenData.begin(), kGoldenData.begin() + 8)},
      {"c", "BF16", {1}, Bytes(kGoldenData.begin() + 8, kGoldenData.begin() + 10)},
      {"e", "F16", {0, 3}, {}},
      {"b", "I16", {2, 3}, Bytes(kGoldenData.begin() + 10, kGoldenData.end())}};
  EXPECT_EQ(safetensors_bytes(tensors, {{"format", "pt"}}), golden_file());
  EXPECT_EQ(safetensors_bytes({}), text_bytes(std::string("\x08\0\0\0\0\0\0\0{}      ", 16)));
}

TEST(SafetensorsGolden, ValuesReadThroughTheMappedFile) {
  TempDir dir;
  write_file(dir.path() / "golden.safetensors", golden_file());
  auto file = hfport::SafetensorsFile::open(dir / "golden.safetensors");
  const hfport::Tensor a = file->tensor("a");
  EXPECT_EQ(a.data_as<float>()[0], 1.0f);
  EXPECT_EQ(a.data_as<float>()[1], -2.5f);
  const hfport::Tensor b = file->tensor("b");
  EXPECT_EQ(b.shape(), (hfport::Shape{2, 3}));
  EXPECT_EQ(b.strides(), (hfport::Shape{3, 1}));
  int16_t values[6];
  std::memcpy(values, b.data(), sizeof values);
  EXPECT_EQ(std::vector<int16_t>(values, values + 6),
            (std::vector<int16_t>{1, -2, 3, 4, 5, -32768}));
  EXPECT_EQ(hfport::bf16_to_f32(file->tensor("c").data_as<uint16_t>()[0]), 1.0f);
  EXPECT_EQ(file->tensor("e").numel(), 0);
  // The views point into the mapping at 8 + header + begin.
  EXPECT_EQ(b.data(), file->storage()->data() + 264 + 10);
}

TEST(SafetensorsGolden, EmptyFileAndScalar) {
  // save({}) and save({"s": torch.tensor(2.5, dtype=float64)})
  const SafetensorsHeader empty = parse(text_bytes(std::string("\x08\0\0\0\0\0\0\0{}      ", 16)));
  EXPECT_TRUE(empty.tensors.empty());
  EXPECT_TRUE(empty.metadata.empty());

  const std::string header = R"({"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}   )";
  ASSERT_EQ(header.size(), 0x38u);
  const SafetensorsHeader scalar = parse(Bytes{0x38, 0, 0, 0, 0, 0, 0, 0} + text_bytes(header) +
                                         Bytes{0, 0, 0, 0, 0, 0, 0x04, 0x40});
  ASSERT_EQ(scalar.tensors.size(), 1u);
  EXPECT_EQ(scalar.tensors[0].dtype, DType::F64);
  EXPECT_TRUE(scalar.tensors[0].shape.empty());
  EXPECT_EQ(scalar.tensors[0].end, 8u);
}

TEST(SafetensorsGolden, HandWrittenHeaderWithWhitespaceAndUnicodeNames) {
  const std::string json =
      "\n { \"z\" : {\"shape\": [ 1 ], \"data_offsets\": [0, 4], \"dtype\": \"I32\"},\n"
      "  \"\xcf\x80.w\xe2\x82\xac\xf0\x9f\x98\x80\" : {\"dtype\": \"U8\", \"shape\": [2, 2],"
      " \"data_offsets\": [4, 8]},\n"
      "  \"zero\": {\"dtype\": \"F8_E5M2\", \"shape\": [3, 0], \"data_offsets\": [8, 8]} }\t";
  const SafetensorsHeader h = parse(file_with(json, 8));
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors[0].name, "z");
  EXPECT_EQ(h.tensors[1].name, "zero");
  EXPECT_EQ(h.tensors[2].name, "\xcf\x80.w\xe2\x82\xac\xf0\x9f\x98\x80");  // "π.w€😀"
  EXPECT_EQ(h.tensors[2].dtype, DType::U8);
  EXPECT_EQ(h.tensors[1].dtype, DType::F8_E5M2);
}

// ---------------------------------------------------------------------------------------------
// One test per rule.

template <typename E>
void expect_refused(const Bytes& file, std::initializer_list<std::string> needles) {
  EXPECT_TRUE(throws_exactly<E>([&] { parse(file); }, needles));
  // Every rule is a HeaderError, which is what callers catch.
  EXPECT_THROW(parse(file), hfport::HeaderError);
}

template <typename E>
void expect_refused(const std::string& json, size_t data_size,
                    std::initializer_list<std::string> needles) {
  expect_refused<E>(file_with(json, data_size), needles);
}

std::string entry(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return R"({"dtype":)" + dtype + R"(,"shape":)" + shape + R"(,"data_offsets":)" + offsets + "}";
}

TEST(SafetensorsRules, HeaderLengthFileShorterThanTheLengthField) {
  expect_refused<hfport::HeaderLengthError>(Bytes{}, {kWhere, "0 bytes", "8-byte header length"});
  expect_refused<hfport::HeaderLengthError>(Bytes{1, 2, 3}, {kWhere, "3 bytes"});
  expect_refused<hfport::HeaderLengthError>(Bytes(7, 0), {kWhere, "7 bytes"});
}

TEST(SafetensorsRules, HeaderLengthPointsBeyondTheFile) {
  expect_refused<hfport::HeaderLengthError>(with_length_field(100, 20),
                                            {kWhere, "100", "28 bytes", "20 header bytes"});
  expect_refused<hfport::HeaderLengthError>(with_length_field(1, 0), {kWhere, "header length 1"});
  // The limit itself is allowed; only the file is too short for it.
  expect_refused<hfport::HeaderLengthError>(with_length_field(100'000'000, 2), {kWhere});
}

TEST(SafetensorsRules, HeaderTooLarge) {
  expect_refused<hfport::HeaderTooLargeError>(with_length_field(100'000'001, 16),
                                              {kWhere, "100000001", "100000000"});
  // A length near 2^64 must not wrap around any arithmetic.
  expect_refused<hfport::HeaderTooLargeError>(with_length_field(~uint64_t{0}, 16),
                                              {kWhere, "18446744073709551615"});
  expect_refused<hfport::HeaderTooLargeError>(with_length_field(~uint64_t{0} - 7, 16), {kWhere});
}

TEST(SafetensorsRules, HeaderEncoding) {
  const std::string tail = R"(":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})";
  // Bad byte, overlong '/', overlong 3-byte, both ends of the surrogates, past U+10FFFF, stray
  // continuation byte, truncated sequence, 5-byte form.
  for (const std::string bad : {"\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xed\xbf\xbf",
                                "\xf4\x90\x80\x80", "\x80", "\xe2\x82", "\xf8\x88\x80\x80\x80"}) {
    SCOPED_TRACE(testing::PrintToString(bad));
    // The bad sequence starts at byte 2 of the header.
    expect_refused<hfport::HeaderEncodingError>("{\"" + bad + tail, 0, {kWhere, "UTF-8", "byte 2"});
  }
  // A truncated sequence at the very end of the header.
  expect_refused<hfport::HeaderEncodingError>(std::string("{}  \xe2\x82"), 0, {kWhere, "byte 4"});
  // The largest code point and the ones around the surrogates are fine.
  for (const std::string good : {"\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80", "\xc2\x80"}) {
    EXPECT_NO_THROW(parse(file_with("{\"" + good + tail, 0))) << testing::PrintToString(good);
  }
}

TEST(SafetensorsRules, HeaderNotJson) {
  expect_refused<hfport::HeaderJsonError>("{", 0, {kWhere, "not valid JSON"});
  expect_refused<hfport::HeaderJsonError>("{} x", 0, {kWhere, "not valid JSON"});
  expect_refused<hfport::HeaderJsonError>("", 0, {kWhere, "not valid JSON"});
  expect_refused<hfport::HeaderJsonError>("{\"a\":1,}", 0, {kWhere});
  expect_refused<hfport::HeaderJsonError>("{/*c*/}", 0, {kWhere});
  // JSON has no byte order mark and no raw NUL: nothing may hide after one.
  expect_refused<hfport::HeaderJsonError>("\xEF\xBB\xBF{}", 0, {kWhere, "byte order mark"});
  expect_refused<hfport::HeaderJsonError>(std::string("{}\0{\"w\":1}", 9), 0,
                                          {kWhere, "NUL byte at byte 2"});
  // Deeper than the nesting limit, inside the metadata.
  const std::string deep =
      R"({"__metadata__":)" + std::string(70, '[') + std::string(70, ']') + "}";
  expect_refused<hfport::HeaderJsonError>(deep, 0, {kWhere, "nesting deeper than 64"});
}

TEST(SafetensorsRules, HeaderNotAnObject) {
  expect_refused<hfport::HeaderJsonError>("[]", 0, {kWhere, "JSON object", "found an array"});
  expect_refused<hfport::HeaderJsonError>("\"x\"", 0, {kWhere, "found a string"});
  expect_refused<hfport::HeaderJsonError>("null", 0, {kWhere, "found null"});
  expect_refused<hfport::HeaderJsonError>("3", 0, {kWhere, "found a number"});
}

TEST(SafetensorsRules, DuplicateKeys) {
  const std::string w = entry("\"U8\"", "[1]", "[0,1]");
  expect_refused<hfport::DuplicateKeyError>("{\"w\":" + w + ",\"w\":" + w + "}", 1,
                                            {kWhere, "duplicate key 'w'"});
  expect_refused<hfport::DuplicateKeyError>(
      R"({"w":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1,
      {kWhere, "duplicate key 'dtype'"});
  expect_refused<hfport::DuplicateKeyError>(
      R"({"__metadata__":{"k":"a","k":"b"},"w":)" + w + "}", 1, {kWhere, "duplicate key 'k'"});
  expect_refused<hfport::DuplicateKeyError>(
      R"({"__metadata__":{},"__metadata__":{}})", 0, {kWhere, "duplicate key '__metadata__'"});
}

TEST(SafetensorsRules, MetadataMustMapStringsToStrings) {
  expect_refused<hfport::MetadataError>(R"({"__metadata__":["a"]})", 0,
                                        {kWhere, "__metadata__", "found an array"});
  expect_refused<hfport::MetadataError>(R"({"__metadata__":"pt"})", 0,
                                        {kWhere, "__metadata__", "found a string"});
  expect_refused<hfport::MetadataError>(R"({"__metadata__":{"format":"pt","step":100}})", 0,
                                        {kWhere, "__metadata__['step']", "found a number"});
  expect_refused<hfport::MetadataError>(R"({"__metadata__":{"nested":{"a":"b"}}})", 0,
                                        {kWhere, "'nested'", "found an object"});
  EXPECT_NO_THROW(parse(file_with(R"({"__metadata__":{}})", 0)));
}

TEST(SafetensorsRules, TensorEntryShape) {
  expect_refused<hfport::TensorEntryError>(R"({"w":[0,1]})", 0,
                                           {kWhere, "tensor 'w'", "found an array"});
  expect_refused<hfport::TensorEntryError>(R"({"w":"F32"})", 0, {kWhere, "'w'", "found a string"});
  expect_refused<hfport::TensorEntryError>(R"({"w":{"shape":[1],"data_offsets":[0,1]}})", 1,
                                           {kWhere, "'w'", "no 'dtype'"});
  expect_refused<hfport::TensorEntryError>(R"({"w":{"dtype":"U8","data_offsets":[0,1]}})", 1,
                                           {kWhere, "'w'", "no 'shape'"});
  expect_refused<hfport::TensorEntryError>(R"({"w":{"dtype":"U8","shape":[1]}})", 1,
                                           {kWhere, "'w'", "no 'data_offsets'"});
  expect_refused<hfport::TensorEntryError>(
      R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"offset":0}})", 1,
      {kWhere, "'w'", "unexpected field 'offset'"});
}

TEST(SafetensorsRules, UnknownDType) {
  expect_refused<hfport::DTypeError>("{\"w\":" + entry("\"F4\"", "[1]", "[0,1]") + "}", 1,
                                     {kWhere, "'w'", "unknown dtype 'F4'", "BF16", "F8_E5M2"});
  expect_refused<hfport::DTypeError>("{\"w\":" + entry("\"f32\"", "[1]", "[0,4]") + "}", 4,
                                     {kWhere, "'w'", "'f32'"});
  expect_refused<hfport::DTypeError>("{\"w\":" + entry("4", "[1]", "[0,4]") + "}", 4,
                                     {kWhere, "'w'", "dtype must be a string", "found a number"});
  expect_refused<hfport::DTypeError>("{\"w\":" + entry("null", "[1]", "[0,4]") + "}", 4,
                                     {kWhere, "'w'", "found null"});
}

TEST(SafetensorsRules, ShapeMustBeNonNegativeIntegers) {
  auto refuse = [](const std::string& shape, std::initializer_list<std::string> needles) {
    SCOPED_TRACE(shape);
    expect_refused<hfport::ShapeError>("{\"w\":" + entry("\"U8\"", shape, "[0,1]") + "}", 1,
                                       needles);
  };
  refuse("[-1]", {kWhere, "'w'", "shape[0]", "a negative number -1"});
  refuse("[1,2.0]", {kWhere, "'w'", "shape[1]", "a non-integer number"});
  refuse("[\"1\"]", {kWhere, "'w'", "shape[0]", "a string"});
  refuse("[[1]]", {kWhere, "'w'", "shape[0]", "an array"});
  refuse("1", {kWhere, "'w'", "shape must be an array", "a number"});
  refuse("{}", {kWhere, "'w'", "an object"});
  refuse("[9223372036854775808]", {kWhere, "'w'", "below 2^63"});       // 2^63
  refuse("[18446744073709551616]", {kWhere, "'w'", "shape[0]"});        // 2^64: not even an integer
}

TEST(SafetensorsRules, ShapeWhoseSizeOverflows) {
  auto refuse = [](const std::string& dtype, const std::string& shape) {
    SCOPED_TRACE(shape);
    expect_refused<hfport::ShapeError>("{\"w\":" + entry(dtype, shape, "[0,0]") + "}", 0,
                                       {kWhere, "'w'", shape, "overflows"});
  };
  refuse("\"U8\"", "[4294967296,4294967296]");             // 2^64 elements wrap to 0
  refuse("\"U8\"", "[4611686018427387904,4]");             // 2^62 * 4 = 2^64
  refuse("\"F64\"", "[1152921504606846976]");              // 2^60 * 8 bytes = 2^63
  refuse("\"F32\"", "[3,3074457345618258603]");            // 9.2e18 elements, 3.7e19 bytes
  refuse("\"U8\"", "[65536,65536,65536,65536,65536]");     // 2^80
  // 2^63 - 1 one-byte elements fit; the offsets then do not match, which is a different rule.
  expect_refused<hfport::OffsetsError>(
      "{\"w\":" + entry("\"U8\"", "[9223372036854775807]", "[0,0]") + "}", 0, {kWhere, "'w'"});
}

TEST(SafetensorsRules, DataOffsetsMalformed) {
  auto refuse = [](const std::string& shape, const std::string& offsets, size_t data,
                   std::initializer_list<std::string> needles) {
    SCOPED_TRACE(offsets);
    expect_refused<hfport::OffsetsError>("{\"w\":" + entry("\"F32\"", shape, offsets) + "}", data,
                                         needles);
  };
  refuse("[1]", "[0,4,8]", 8, {kWhere, "'w'", "[begin, end]", "[0,4,8]"});
  refuse("[1]", "[4]", 4, {kWhere, "'w'", "[4]"});
  refuse("[1]", "4", 4, {kWhere, "'w'", "found 4"});
  refuse("[1]", "[-4,0]", 4, {kWhere, "'w'", "non-negative integers", "[-4,0]"});
  refuse("[1]", "[0,4.0]", 4, {kWhere, "'w'", "non-negative integers"});
  refuse("[1]", "[0,\"4\"]", 4, {kWhere, "'w'", "non-negative integers"});
  refuse("[0]", "[8,4]", 8, {kWhere, "'w'", "[8,4]", "end before they begin"});
}

TEST(SafetensorsRules, DataOffsetsDisagreeWithShapeAndDType) {
  // Expected 2 x 4 = 8 bytes; found 12.
  expect_refused<hfport::OffsetsError>(
      "{\"w\":" + entry("\"F32\"", "[2]", "[0,12]") + "}", 12,
      {kWhere, "'w'", "shape [2]", "F32", "8 bytes", "[0,12]", "span 12 bytes"});
  expect_refused<hfport::OffsetsError>(
      "{\"w\":" + entry("\"BF16\"", "[3,0]", "[0,2]") + "}", 2,
      {kWhere, "'w'", "0 bytes", "2 bytes"});
  expect_refused<hfport::OffsetsError>(
      "{\"w\":" + entry("\"I64\"", "[]", "[0,4]") + "}", 4, {kWhere, "'w'", "8 bytes", "4 bytes"});
}

TEST(SafetensorsRules, LayoutMustStartAtZero) {
  expect_refused<hfport::LayoutError>("{\"w\":" + entry("\"F32\"", "[1]", "[4,8]") + "}", 8,
                                      {kWhere, "'w'", "starts at byte 4", "expected 0"});
}

TEST(SafetensorsRules, LayoutGap) {
  const std::string json = "{\"a\":" + entry("\"F32\"", "[1]", "[0,4]") +
                           ",\"b\":" + entry("\"F32\"", "[1]", "[8,12]") + "}";
  expect_refused<hfport::LayoutError>(json, 12, {kWhere, "'b'", "[8, 12)", "'a'", "ends at byte 4",
                                                 "gap of 4 bytes"});
}

TEST(SafetensorsRules, LayoutOverlap) {
  const std::string json = "{\"a\":" + entry("\"F32\"", "[2]", "[0,8]") +
                           ",\"b\":" + entry("\"F32\"", "[2]", "[4,12]") + "}";
  expect_refused<hfport::LayoutError>(json, 12, {kWhere, "'a'", "'b'", "[4, 12)", "overlap"});
  // Two names for the same bytes.
  const std::string alias = "{\"a\":" + entry("\"F32\"", "[1]", "[0,4]") +
                            ",\"b\":" + entry("\"F32\"", "[1]", "[0,4]") + "}";
  expect_refused<hfport::LayoutError>(alias, 4, {kWhere, "overlap"});
}

TEST(SafetensorsRules, FileTruncated) {
  const std::string json = "{\"a\":" + entry("\"F32\"", "[1]", "[0,4]") +
                           ",\"b\":" + entry("\"F32\"", "[2]", "[4,12]") + "}";
  const std::string header_size = std::to_string(json.size());
  expect_refused<hfport::FileSizeError>(
      json, 10, {kWhere, "truncated", "'b' [4, 12)", "10-byte data buffer", "header " + header_size,
                 "data 12", "file is " + std::to_string(8 + json.size() + 10) + " bytes"});
}

TEST(SafetensorsRules, FileHasTrailingBytes) {
  const std::string json = "{\"a\":" + entry("\"F32\"", "[1]", "[0,4]") + "}";
  expect_refused<hfport::FileSizeError>(json, 7, {kWhere, "3 trailing bytes", "data 4"});
  expect_refused<hfport::FileSizeError>("{}", 1, {kWhere, "1 trailing bytes"});
}

TEST(SafetensorsRules, ZeroSizedTensorsAnywhereInTheTiling) {
  // Empty tensors at the start, between and after others are legal.
  const std::string json = "{\"e0\":" + entry("\"F32\"", "[0]", "[0,0]") +
                           ",\"a\":" + entry("\"F32\"", "[1]", "[0,4]") +
                           ",\"e1\":" + entry("\"U8\"", "[2,0,3]", "[4,4]") +
                           ",\"b\":" + entry("\"U8\"", "[2]", "[4,6]") +
                           ",\"e2\":" + entry("\"I64\"", "[0]", "[6,6]") + "}";
  const SafetensorsHeader h = parse(file_with(json, 6));
  EXPECT_EQ(h.tensors.size(), 5u);
}

// Issue 12: a tensor without elements may have dimensions whose product overflows, as torch and
// safetensors allow, as long as its element strides fit int64 (torch's rule: [0, 2^62, 2^62]
// raises "Stride calculation overflowed" there and is refused here).
TEST(SafetensorsRules, EmptyTensorsWithHugeDimensions) {
  for (const std::string& shape :
       {"[0,2147483648,2147483648]", "[0,9223372036854775807]", "[4611686018427387904,2,0]",
        "[3,0,4611686018427387904]", "[4611686018427387904,4611686018427387904,0]"}) {
    SCOPED_TRACE(shape);
    const SafetensorsHeader h = parse(file_with("{\"e\":" + entry("\"F64\"", shape, "[0,0]") + "}", 0));
    EXPECT_EQ(h.tensors[0].begin, h.tensors[0].end);
    const hfport::Tensor view(nullptr, 0, h.tensors[0].dtype, h.tensors[0].shape,
                              hfport::contiguous_strides(h.tensors[0].shape));
    EXPECT_EQ(view.numel(), 0);
  }
  for (const std::string& shape : {"[0,4611686018427387904,4611686018427387904]",
                                   "[0,4294967296,4294967296,2]"}) {
    SCOPED_TRACE(shape);
    expect_refused<hfport::ShapeError>("{\"e\":" + entry("\"U8\"", shape, "[0,0]") + "}", 0,
                                       {kWhere, "'e'", shape, "overflows"});
  }
}

// The header is read in one SAX pass and its rules are applied afterwards in name order, as when
// it was a std::map-backed DOM: the first rule broken in name order is reported, wherever it sits
// in the text, __metadata__ in its place ('_' sorts after capitals, before lower case). A JSON
// error anywhere comes before all of them.
TEST(SafetensorsRules, FirstRuleBrokenInNameOrderIsReported) {
  const std::string bad_offsets = R"("b":{"dtype":"U8","shape":[1],"data_offsets":[1]})";
  const std::string bad_dtype = R"("A":{"dtype":"X","shape":[1],"data_offsets":[0,1]})";
  const std::string bad_metadata = R"("__metadata__":{"k":"v","j":[],"i":1})";
  expect_refused<hfport::DTypeError>("{" + bad_offsets + "," + bad_metadata + "," + bad_dtype + "}",
                                     1, {kWhere + ": tensor 'A' has unknown dtype 'X'"});
  expect_refused<hfport::MetadataError>(
      "{" + bad_offsets + "," + bad_metadata + "}", 1,
      {kWhere + ": __metadata__['i'] must be a string, found a number"});
  expect_refused<hfport::OffsetsError>(
      "{" + bad_offsets + R"(,"__metadata__":{"k":"v"}})", 1,
      {kWhere + ": tensor 'b': data_offsets must be [begin, end], found [1]"});
  expect_refused<hfport::DuplicateKeyError>(
      "{" + bad_dtype + "," + bad_offsets + R"(,"z":{"x":1,"x":2}})", 1,
      {kWhere + ": header duplicate key 'x'"});
}

// Shapes and offsets are read as numbers until a value of another kind turns up; the message
// still prints the whole value as written.
TEST(SafetensorsRules, MessagesPrintWholeValuesAsWritten) {
  auto header = [](const std::string& shape, const std::string& offsets) {
    return "{\"w\":" + entry("\"U8\"", shape, offsets) + "}";
  };
  const std::string w = kWhere + ": tensor 'w'";
  expect_refused<hfport::ShapeError>(
      header("[2,\"x\",3]", "[0,6]"), 6,
      {w + ": shape[1] must be a non-negative integer below 2^63, found a string \"x\""});
  expect_refused<hfport::ShapeError>(
      header("[2,4294967296,4294967296,\"x\"]", "[0,0]"), 0,
      {w + ": shape [2,4294967296,4294967296,\"x\"] overflows: its byte size (or a stride) does "
           "not fit in 64 bits"});
  expect_refused<hfport::OffsetsError>(
      header("[2]", "[0,2,[3]]"), 2, {w + ": data_offsets must be [begin, end], found [0,2,[3]]"});
  expect_refused<hfport::OffsetsError>(
      header("[2]", "[0,2.5]"), 2,
      {w + ": data_offsets must be non-negative integers, found [0,2.5]"});
  // -0 is an integer, and it is zero.
  const SafetensorsHeader h = parse(file_with(header("[-0,2]", "[-0,0]"), 0));
  ASSERT_EQ(h.tensors.size(), 1u);
  EXPECT_EQ(h.tensors[0].shape, (hfport::Shape{0, 2}));
  EXPECT_EQ(h.tensors[0].end, 0u);
}

// Every event counts the containers open around it, the header object included: a value may sit
// inside 64 of them, and 65 nested containers are allowed only when the innermost is empty.
TEST(SafetensorsRules, NestingLimitCountsTheHeaderObject) {
  auto metadata_nested = [](int arrays, const std::string& inner) {
    const std::string open(arrays, '['), close(arrays, ']');
    return R"({"__metadata__":)" + open + inner + close + "}";
  };
  const std::string not_an_object = "__metadata__ must be an object of strings, found an array";
  const std::string too_deep = "header is not valid JSON: nesting deeper than 64 levels";
  expect_refused<hfport::MetadataError>(metadata_nested(63, "1"), 0, {not_an_object});
  expect_refused<hfport::HeaderJsonError>(metadata_nested(64, "1"), 0, {too_deep});
  expect_refused<hfport::MetadataError>(metadata_nested(64, ""), 0, {not_an_object});
  expect_refused<hfport::HeaderJsonError>(metadata_nested(65, ""), 0, {too_deep});
}

// ---------------------------------------------------------------------------------------------
// Properties.

const char* const kDTypeNames[] = {"BOOL", "U8",  "I8",  "I16", "U16", "F16",     "BF16",   "I32",
                                   "U32",  "F32", "I64", "U64", "F64", "F8_E4M3", "F8_E5M2"};
const size_t kDTypeSizes[] = {1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8, 1, 1};

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

std::string random_string(std::mt19937& rng, size_t max_length) {
  static const uint32_t kCodePoints[] = {'a', 'z', '.', '_', '0', '9', '"', '\\', '/', '\n', 0x01,
                                         0x7F, 0xE9, 0x3C0, 0x20AC, 0xD7FF, 0xE000, 0xFFFD, 0x1F600,
                                         0x10FFFF, ' ', '{', '}', '[', ':', ','};
  std::uniform_int_distribution<size_t> length(0, max_length);
  std::uniform_int_distribution<size_t> pick(0, std::size(kCodePoints) - 1);
  std::uniform_int_distribution<int> letter('a', 'z');
  std::string s;
  for (size_t n = length(rng), i = 0; i < n; ++i) {
    s += (rng() % 3 == 0) ? utf8(kCodePoints[pick(rng)])
                          : std::string(1, static_cast<char>(letter(rng)));
  }
  return s;
}

struct RandomFile {
  std::vector<TensorBytes> tensors;  // in data-buffer order
  Metadata metadata;
  Bytes bytes;
};

RandomFile random_file(std::mt19937& rng) {
  RandomFile f;
  std::set<std::string> names;
  const size_t count = rng() % 9;
  while (f.tensors.size() < count) {
    std::string name = random_string(rng, 12);
    if (name == "__metadata__" || !names.insert(name).second) continue;
    TensorBytes t;
    t.name = name;
    const size_t d = rng() % std::size(kDTypeNames);
    t.dtype = kDTypeNames[d];
    size_t numel = 1;
    for (size_t rank = rng() % 5, i = 0; i < rank; ++i) {
      t.shape.push_back(static_cast<int64_t>(rng() % 6));
      numel *= static_cast<size_t>(t.shape.back());
    }
    t.data.resize(numel * kDTypeSizes[d]);
    for (auto& byte : t.data) byte = static_cast<uint8_t>(rng());
    f.tensors.push_back(std::move(t));
  }
  std::set<std::string> keys;
  for (size_t n = rng() % 4, i = 0; i < n; ++i) {
    std::string key = random_string(rng, 8);
    if (keys.insert(key).second) f.metadata.emplace_back(key, random_string(rng, 20));
  }
  const size_t aligns[] = {1, 8, 64};
  f.bytes = safetensors_bytes(f.tensors, f.metadata, aligns[rng() % 3]);
  return f;
}

TEST(SafetensorsProperty, RandomValidFilesRoundTrip) {
  std::mt19937 rng(1234);
  TempDir dir;
  for (int trial = 0; trial < 300; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const RandomFile f = random_file(rng);
    const SafetensorsHeader h = parse(f.bytes);

    // Expected entries, from the writer's layout, sorted by name.
    std::map<std::string, std::pair<const TensorBytes*, uint64_t>> expected;
    uint64_t offset = 0;
    for (const TensorBytes& t : f.tensors) {
      expected[t.name] = {&t, offset};
      offset += t.data.size();
    }
    ASSERT_EQ(h.data_offset() + offset, f.bytes.size());
    ASSERT_EQ(h.tensors.size(), expected.size());
    auto it = expected.begin();
    for (const TensorInfo& info : h.tensors) {
      const auto& [t, begin] = it->second;
      EXPECT_EQ(info.name, it->first);
      EXPECT_EQ(hfport::dtype_name(info.dtype), t->dtype);
      EXPECT_EQ(info.shape, t->shape);
      EXPECT_EQ(info.begin, begin);
      EXPECT_EQ(info.end, begin + t->data.size());
      ++it;
    }
    EXPECT_EQ(h.metadata,
              (std::map<std::string, std::string>(f.metadata.begin(), f.metadata.end())));

    if (trial % 10 == 0) {  // and through a real file and its mapping
      const std::string path = dir / ("r" + std::to_string(trial) + ".safetensors");
      write_file(path, f.bytes);
      auto file = hfport::SafetensorsFile::open(path);
      for (const TensorBytes& t : f.tensors) {
        const hfport::Tensor view = file->tensor(t.name);
        ASSERT_EQ(view.nbytes(), t.data.size());
        EXPECT_TRUE(t.data.empty() || std::memcmp(view.data(), t.data.data(), t.data.size()) == 0)
            << t.name;
      }
    }
  }
}

// What a header that parsed must guarantee to the rest of the code.
void expect_trustworthy(const SafetensorsHeader& h, size_t file_size) {
  ASSERT_LE(h.data_offset(), file_size);
  const uint64_t data_size = file_size - h.data_offset();
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const TensorInfo& t : h.tensors) {
    unsigned __int128 bytes = hfport::dtype_size(t.dtype);
    for (int64_t d : t.shape) {
      ASSERT_GE(d, 0);
      bytes *= static_cast<uint64_t>(d);
      if (bytes > data_size) bytes = data_size + 1;  // keep it bounded; it must fail below
    }
    ASSERT_EQ(bytes, t.end - t.begin) << t.name;
    ASSERT_LE(t.end, data_size) << t.name;
    ranges.emplace_back(t.begin, t.end);
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t at = 0;
  for (const auto& [begin, end] : ranges) {
    ASSERT_EQ(begin, at);
    at = end;
  }
  ASSERT_EQ(at, data_size);
}

TEST(SafetensorsProperty, MutatedFilesParseOrThrowHeaderErrors) {
  std::mt19937 rng(99);
  int parsed = 0, refused = 0;
  for (int base = 0; base < 40; ++base) {
    RandomFile f = random_file(rng);
    while (f.tensors.empty()) f = random_file(rng);
    for (int trial = 0; trial < 600; ++trial) {
      Bytes bytes = f.bytes;
      const int kind = static_cast<int>(rng() % 5);
      for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0 && !bytes.empty(); --edits) {
        const size_t at = rng() % bytes.size();
        switch (kind) {
          case 0: bytes[at] = static_cast<uint8_t>(rng()); break;                   // any byte
          case 1: bytes[at] = static_cast<uint8_t>("0123456789[]{},:\"-.e "[rng() % 21]); break;
          case 2: bytes.insert(bytes.begin() + at, static_cast<uint8_t>(rng())); break;
          case 3: bytes.erase(bytes.begin() + at); break;
          case 4: bytes.resize(at); break;                                           // truncate
        }
      }
      try {
        const SafetensorsHeader h = parse(bytes);
        expect_trustworthy(h, bytes.size());
        ++parsed;
      } catch (const hfport::HeaderError&) {
        ++refused;
      } catch (const std::exception& e) {
        FAIL() << "mutation threw " << typeid(e).name() << ": " << e.what();
      }
    }
  }
  // Both outcomes happen (a mutation in the data buffer keeps the file valid).
  EXPECT_GT(parsed, 100);
  EXPECT_GT(refused, 1000);
}

}  // namespace
