#include "base/json_config.h"

#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;

TEST_CASE("ConfigObject typed getters") {
  auto cfg = ConfigObject::parse(R"({"hidden_size": 64, "eps": 1e-6, "name": "x", "flag": true, "ids": [1, 2],
                                     "one_id": 7, "nothing": null, "text_config": {"layers": 2, "rope": {"theta": 1e6}}})",
                                 "config.json");
  CHECK(cfg.get<int>("hidden_size") == 64);
  CHECK(cfg.get<double>("eps") == doctest::Approx(1e-6));
  CHECK(cfg.get<double>("hidden_size") == 64.0);  // integers are numbers too
  CHECK(cfg.get<std::string>("name") == "x");
  CHECK(cfg.get<bool>("flag"));
  CHECK(cfg.get<std::vector<std::int64_t>>("ids") == std::vector<std::int64_t>{1, 2});
  CHECK(cfg.get<std::vector<std::int64_t>>("one_id") == std::vector<std::int64_t>{7});
  CHECK_FALSE(cfg.has("nothing"));
  CHECK(cfg.get_or<int>("nothing", 5) == 5);
  CHECK(cfg.get_or<int>("absent", 9) == 9);
  auto rope = cfg.child("text_config").child("rope");
  CHECK(rope.key_path() == "text_config.rope");
  CHECK(rope.get<double>("theta") == 1e6);
}

TEST_CASE("ConfigObject errors name the file and the key path") {
  auto cfg = ConfigObject::parse(R"({"a": "str", "text_config": {"n": 1.5}})", "/m/config.json");
  expect_error([&] { cfg.get<int>("a"); }, ErrorCode::invalid_argument, {"/m/config.json", "'a'", "integer", "\"str\""});
  expect_error([&] { cfg.child("text_config").get<int>("n"); }, ErrorCode::invalid_argument, {"'text_config.n'", "1.5"});
  expect_error([&] { cfg.get<int>("missing"); }, ErrorCode::not_found, {"'missing'", "required"});
  expect_error([&] { cfg.child("a"); }, ErrorCode::invalid_argument, {"an object"});
  expect_error([] { ConfigObject::parse("{oops", "bad.json"); }, ErrorCode::corrupt_data, {"bad.json", "not valid JSON"});
  expect_error([] { ConfigObject::parse("[1]", "arr.json"); }, ErrorCode::corrupt_data, {"arr.json", "object"});
  expect_error([] { ConfigObject::load("/nonexistent/config.json"); }, ErrorCode::not_found, {"/nonexistent/config.json"});
}
