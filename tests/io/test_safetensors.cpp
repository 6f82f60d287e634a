#include "io/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;
using vlm::test::TempDir;
using vlm::test::hex_of;

namespace {

// A file made of an explicit header text and data bytes (header length computed from the text).
std::string make_file(const std::string& header, const std::string& data) {
  std::string out;
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

SafetensorsHeader parse(const std::string& bytes) {
  return parse_safetensors_header(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "t.safetensors");
}

}  // namespace

TEST_CASE("reads every dtype written by the safetensors package bit-exactly") {
  auto file = SafetensorsFile::open(vlm::test::fixture("io/all_dtypes.safetensors"));
  auto expected = nlohmann::json::parse(vlm::test::read_bytes(vlm::test::fixture("io/all_dtypes.expected.json")));
  CHECK(file->metadata().at("format") == "pt");
  CHECK(file->metadata().at("note") == "every dtype");
  REQUIRE(file->tensors().size() == expected.size());
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    CAPTURE(it.key());
    const TensorInfo& info = file->at(it.key());
    CHECK(info.shape == it.value()["shape"].get<std::vector<std::int64_t>>());
    CHECK(hex_of(file->data(info), info.nbytes()) == it.value()["bytes_hex"].get<std::string>());
  }
  CHECK(file->at("bf16").dtype == DType::BF16);
  CHECK(file->at("u64").dtype == DType::U64);
  CHECK(file->at("f8_e5m2").dtype == DType::F8_E5M2);
  CHECK(file->at("scalar").shape.empty());
  CHECK(file->at("empty").numel() == 0);
  expect_error([&] { file->at("nope"); }, ErrorCode::not_found, {"\"nope\"", "all_dtypes.safetensors"});
}

TEST_CASE("serialize then parse round-trips, aligned and padded like the reference writer") {
  const float f[3] = {1.f, 2.f, 3.f};
  const std::uint8_t b[2] = {1, 0};
  const double d[1] = {4.0};
  std::vector<TensorBytes> tensors = {{"z.bool", DType::BOOL, {2}, b, 2},
                                      {"a.f32", DType::F32, {3}, f, 12},
                                      {"m.f64", DType::F64, {1, 1}, d, 8}};
  std::string bytes = serialize_safetensors(tensors, {{"format", "pt"}});
  auto header = parse(bytes);
  CHECK(header.data_start % 8 == 0);
  REQUIRE(header.tensors.size() == 3);
  // Largest element size first, so every tensor is aligned.
  CHECK(header.tensors[0].name == "m.f64");
  CHECK(header.tensors[1].name == "a.f32");
  CHECK(header.tensors[2].name == "z.bool");
  CHECK(header.metadata.at("format") == "pt");
  CHECK(std::memcmp(bytes.data() + header.data_start + header.tensors[1].begin, f, 12) == 0);

  TempDir dir;
  write_safetensors(dir.file("x.safetensors"), tensors, {{"format", "pt"}});
  CHECK(vlm::test::read_bytes(dir.file("x.safetensors")) == bytes);

  expect_error([&] { serialize_safetensors({{"a", DType::F32, {2}, f, 12}}); }, ErrorCode::invalid_argument, {"\"a\"", "12 bytes", "8"});
  expect_error([&] { serialize_safetensors({{"a", DType::F32, {1}, f, 4}, {"a", DType::F32, {1}, f, 4}}); },
               ErrorCode::invalid_argument, {"duplicate", "\"a\""});
}

TEST_CASE("malformed headers are rejected with the file and tensor named") {
  const std::string data8(8, '\0');
  SUBCASE("shorter than the length field") {
    expect_error([] { parse("abc"); }, ErrorCode::corrupt_data, {"t.safetensors", "fewer than the 8-byte"});
  }
  SUBCASE("length field beyond the file") {
    std::string bytes = make_file("{}", "");
    bytes[0] = 100;
    expect_error([&] { parse(bytes); }, ErrorCode::corrupt_data, {"header length field says 100", "only 2 bytes"});
  }
  SUBCASE("length field above the 100 MB limit") {
    std::string bytes = make_file("{}", "");
    bytes[4] = 1;  // 2^32 + 2
    expect_error([&] { parse(bytes); }, ErrorCode::corrupt_data, {"limit"});
  }
  SUBCASE("not JSON / not an object") {
    expect_error([&] { parse(make_file("{\"a\":", "")); }, ErrorCode::corrupt_data, {"not valid JSON"});
    expect_error([&] { parse(make_file("[1,2]", "")); }, ErrorCode::corrupt_data, {"not a JSON object"});
  }
  SUBCASE("unknown and unsupported dtypes") {
    expect_error([&] { parse(make_file(R"({"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", data8)); },
                 ErrorCode::corrupt_data, {"\"w\"", "unknown dtype \"Q7\""});
    expect_error([&] { parse(make_file(R"({"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})", "x")); },
                 ErrorCode::unsupported, {"\"w\"", "F4"});
  }
  SUBCASE("header lies about sizes") {
    expect_error([&] { parse(make_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8)); },
                 ErrorCode::corrupt_data, {"\"w\"", "occupies 8 bytes", "need 12"});
  }
  SUBCASE("truncated data region") {
    expect_error([&] { parse(make_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data8)); },
                 ErrorCode::corrupt_data, {"\"w\"", "ends at data offset 16", "only 8 bytes"});
  }
  SUBCASE("overlapping tensors") {
    expect_error([&] {
      parse(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8));
    }, ErrorCode::corrupt_data, {"overlaps"});
  }
  SUBCASE("gaps and trailing bytes") {
    expect_error([&] { parse(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8)); },
                 ErrorCode::corrupt_data, {"gap of 4"});
    expect_error([&] { parse(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data8)); },
                 ErrorCode::corrupt_data, {"cover 4 bytes", "has 8"});
  }
  SUBCASE("bad field types") {
    expect_error([&] { parse(make_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", "")); },
                 ErrorCode::corrupt_data, {"\"a\"", "shape"});
    expect_error([&] { parse(make_file(R"({"a":{"dtype":"F32","shape":[1]}})", "")); }, ErrorCode::corrupt_data, {"data_offsets"});
    expect_error([&] { parse(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", data8)); },
                 ErrorCode::corrupt_data, {"begin 8 > end 4"});
    expect_error([&] { parse(make_file(R"({"__metadata__":{"k":1}})", "")); }, ErrorCode::corrupt_data, {"__metadata__", "\"k\""});
    expect_error([&] { parse(make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", "")); },
                 ErrorCode::corrupt_data, {"overflows"});
  }
}

TEST_CASE("every truncation of a valid file is rejected cleanly") {
  const std::string good = vlm::test::read_bytes(vlm::test::fixture("io/all_dtypes.safetensors"));
  for (std::size_t cut = 0; cut < good.size(); cut += 7) {
    CAPTURE(cut);
    std::string bytes = good.substr(0, cut);
    CHECK_THROWS_AS(parse(bytes), Error);
  }
  CHECK(parse(good).tensors.size() == 17);
}

TEST_CASE("opening a missing or truncated file names it") {
  TempDir dir;
  expect_error([&] { SafetensorsFile::open(dir.file("missing.safetensors")); }, ErrorCode::not_found, {"missing.safetensors"});
  const std::string good = vlm::test::read_bytes(vlm::test::fixture("io/all_dtypes.safetensors"));
  vlm::test::write_bytes(dir.file("cut.safetensors"), good.substr(0, good.size() - 3));
  expect_error([&] { SafetensorsFile::open(dir.file("cut.safetensors")); }, ErrorCode::corrupt_data, {"cut.safetensors"});
}
