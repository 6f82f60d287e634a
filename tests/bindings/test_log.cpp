// core/base/log.h: whole lines, the threshold, sink replacement, and no exception escaping a sink.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "base/log.h"

namespace {
struct Capture {
  std::vector<std::pair<vlm::LogLevel, std::string>> lines;
  void install() {
    vlm::set_log_sink([this](vlm::LogLevel level, std::string_view line) { lines.emplace_back(level, std::string(line)); });
  }
};
}  // namespace

TEST_CASE("log: no sink, nothing happens; whole lines reach the sink") {
  vlm::set_log_sink(nullptr);
  vlm::set_log_threshold(vlm::LogLevel::info);
  CHECK_FALSE(vlm::log_enabled(vlm::LogLevel::error));
  vlm::log(vlm::LogLevel::error, "dropped");

  Capture c;
  c.install();
  CHECK(vlm::log_enabled(vlm::LogLevel::info));
  CHECK_FALSE(vlm::log_enabled(vlm::LogLevel::debug));
  vlm::log(vlm::LogLevel::info, "one line");
  vlm::log(vlm::LogLevel::warning, "first\nsecond\r\nthird\n");
  vlm::log(vlm::LogLevel::error, "a\n\nb");
  vlm::log(vlm::LogLevel::info, "");
  vlm::log(vlm::LogLevel::debug, "below the threshold");
  const std::vector<std::pair<vlm::LogLevel, std::string>> expected = {
      {vlm::LogLevel::info, "one line"}, {vlm::LogLevel::warning, "first"}, {vlm::LogLevel::warning, "second"},
      {vlm::LogLevel::warning, "third"}, {vlm::LogLevel::error, "a"},       {vlm::LogLevel::error, ""},
      {vlm::LogLevel::error, "b"},       {vlm::LogLevel::info, ""}};
  CHECK(c.lines == expected);

  vlm::set_log_threshold(vlm::LogLevel::off);
  CHECK_FALSE(vlm::log_enabled(vlm::LogLevel::error));
  vlm::log(vlm::LogLevel::error, "off");
  CHECK(c.lines.size() == expected.size());
  vlm::set_log_threshold(vlm::LogLevel::debug);
  vlm::log(vlm::LogLevel::debug, "now");
  CHECK(c.lines.back().second == "now");
  CHECK_FALSE(vlm::log_enabled(vlm::LogLevel::off));  // off is a threshold, never a line's level
  vlm::set_log_sink(nullptr);
  vlm::set_log_threshold(vlm::LogLevel::info);
}

TEST_CASE("log: a throwing sink does not make log() throw") {
  vlm::set_log_sink([](vlm::LogLevel, std::string_view) { throw std::runtime_error("sink broke"); });
  CHECK_NOTHROW(vlm::log(vlm::LogLevel::error, "x\ny"));
  vlm::set_log_sink(nullptr);
  CHECK(std::string(vlm::log_level_name(vlm::LogLevel::warning)) == "warning");
}
