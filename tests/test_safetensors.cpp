// The safetensors reader: a valid file reads back exactly; every malformed file is rejected with a message
// that names the file and the defect (and never reads out of bounds: this suite also runs under ASan).
#include <doctest/doctest.h>

#include <string>

#include "src/model/error.h"
#include "src/model/safetensors.h"
#include "tests/support/safetensors_writer.h"
#include "tests/support/temp_dir.h"

using namespace ossrun;
using ossrun::test::TempDir;

namespace {

// Expects opening `path` to throw InputError whose message contains the file name and `fragment`.
void expect_rejected(const std::filesystem::path& path, const std::string& fragment) {
  try {
    SafetensorsFile f(path);
    FAIL("accepted a malformed file; expected an error containing: " << fragment);
  } catch (const InputError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find(path.filename().string()) != std::string::npos);
    CHECK(msg.find(fragment) != std::string::npos);
  }
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, uint64_t b, uint64_t e) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + std::to_string(b) +
         "," + std::to_string(e) + "]}";
}

}  // namespace

TEST_CASE("safetensors: a valid file reads back tensor by tensor") {
  TempDir tmp;
  test::RawTensor a{"a", DType::BF16, {2, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}};
  test::RawTensor b{"b", DType::U8, {4}, {9, 8, 7, 6}};
  test::write_safetensors(tmp / "x.safetensors", {a, b});
  SafetensorsFile f(tmp / "x.safetensors");
  CHECK(f.entries().size() == 2);
  CHECK(f.metadata().at("format") == "pt");
  TensorView va = f.view("a");
  CHECK(va.dtype == DType::BF16);
  CHECK(va.shape == std::vector<int64_t>{2, 3});
  REQUIRE(va.bytes.size() == 12);
  CHECK(static_cast<int>(va.bytes[11]) == 12);
  TensorView vb = f.view("b");
  CHECK(static_cast<int>(vb.bytes[0]) == 9);
  CHECK(vb.slice_outer(2).bytes.size() == 1);
  CHECK_THROWS_AS(vb.slice_outer(4), std::out_of_range);
  CHECK_THROWS_AS(f.view("c"), InputError);
}

TEST_CASE("safetensors: an empty tensor list is a valid file") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "e.safetensors", "{}", {});
  SafetensorsFile f(tmp / "e.safetensors");
  CHECK(f.entries().empty());
}

TEST_CASE("safetensors: file shorter than the 8-byte length is truncated") {
  TempDir tmp;
  test::write_bytes(tmp / "t.safetensors", "abc");
  expect_rejected(tmp / "t.safetensors", "truncated");
}

TEST_CASE("safetensors: header length beyond the end of the file") {
  TempDir tmp;
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(200);  // claims a 200-byte header
  test::write_bytes(tmp / "h.safetensors", bytes + "{}");
  expect_rejected(tmp / "h.safetensors", "runs past the end of the file");
}

TEST_CASE("safetensors: header length above the limit") {
  TempDir tmp;
  std::string bytes(8, '\0');
  bytes[4] = 1;  // 2^32 bytes
  test::write_bytes(tmp / "big.safetensors", bytes + "{}");
  expect_rejected(tmp / "big.safetensors", "exceeds");
}

TEST_CASE("safetensors: header that is not valid JSON") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "j.safetensors", "{\"a\": [1, 2", {});
  expect_rejected(tmp / "j.safetensors", "not valid JSON");
}

TEST_CASE("safetensors: header that is JSON but not an object") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "arr.safetensors", "[1,2,3]", {});
  expect_rejected(tmp / "arr.safetensors", "not an object");
}

TEST_CASE("safetensors: offsets outside the data section") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "o.safetensors", "{" + entry("w", "U8", "[8]", 0, 8) + "}", std::vector<uint8_t>(4));
  expect_rejected(tmp / "o.safetensors", "outside the data section");
}

TEST_CASE("safetensors: overlapping tensors") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "ov.safetensors",
                              "{" + entry("a", "U8", "[4]", 0, 4) + "," + entry("b", "U8", "[4]", 2, 6) + "}",
                              std::vector<uint8_t>(6));
  expect_rejected(tmp / "ov.safetensors", "overlaps");
}

TEST_CASE("safetensors: offsets out of order (end before begin)") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "r.safetensors", "{" + entry("a", "U8", "[0]", 4, 0) + "}", std::vector<uint8_t>(4));
  expect_rejected(tmp / "r.safetensors", "end before they begin");
}

TEST_CASE("safetensors: a gap between tensors") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "g.safetensors",
                              "{" + entry("a", "U8", "[2]", 0, 2) + "," + entry("b", "U8", "[2]", 4, 6) + "}",
                              std::vector<uint8_t>(6));
  expect_rejected(tmp / "g.safetensors", "gap");
}

TEST_CASE("safetensors: trailing bytes after the last tensor") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "tr.safetensors", "{" + entry("a", "U8", "[2]", 0, 2) + "}", std::vector<uint8_t>(5));
  expect_rejected(tmp / "tr.safetensors", "trailing");
}

TEST_CASE("safetensors: byte size not equal to dtype x shape") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "s.safetensors", "{" + entry("w", "BF16", "[3]", 0, 4) + "}", std::vector<uint8_t>(4));
  expect_rejected(tmp / "s.safetensors", "needs 6");
}

TEST_CASE("safetensors: unknown dtype") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "d.safetensors", "{" + entry("w", "Q4_K", "[4]", 0, 4) + "}", std::vector<uint8_t>(4));
  expect_rejected(tmp / "d.safetensors", "unknown dtype \"Q4_K\"");
}

TEST_CASE("safetensors: negative or non-integer shape entries") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "n.safetensors", "{" + entry("w", "U8", "[-4]", 0, 4) + "}", std::vector<uint8_t>(4));
  expect_rejected(tmp / "n.safetensors", "not a non-negative integer");
  test::write_raw_safetensors(tmp / "f.safetensors", "{" + entry("w", "U8", "[2.5]", 0, 4) + "}", std::vector<uint8_t>(4));
  expect_rejected(tmp / "f.safetensors", "not a non-negative integer");
}

TEST_CASE("safetensors: shape whose element count overflows") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "ovf.safetensors",
                              "{" + entry("w", "F32", "[4294967296, 4294967296, 16]", 0, 4) + "}", std::vector<uint8_t>(4));
  expect_rejected(tmp / "ovf.safetensors", "overflows");
}

TEST_CASE("safetensors: entry missing a field") {
  TempDir tmp;
  test::write_raw_safetensors(tmp / "m.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[4]}}", std::vector<uint8_t>(4));
  expect_rejected(tmp / "m.safetensors", "no \"data_offsets\"");
}

TEST_CASE("safetensors: a file that does not exist") {
  TempDir tmp;
  CHECK_THROWS_WITH_AS(SafetensorsFile(tmp / "none.safetensors"), doctest::Contains("cannot open"), InputError);
}
