// Fixture access for the image processor tests (tests/fixtures/processor).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "image/image.h"

namespace vlm::test {

std::string processor_fixture(const std::string& relative);
// Decompresses a .gz fixture into memory.
std::string read_gz(const std::string& path);
nlohmann::json read_json(const std::string& path);
// Source images under images/, decoded once per test process.
const RgbImage& fixture_image(const std::string& name);

}  // namespace vlm::test
