// Times vlmrt's image processor on one image, the native half of tools/bench/bench_processor.py (which runs
// transformers' slow and fast processors on the same image in the same run and prints the ratios).
//
//   bench_processor --config DIR --image FILE [--min-pixels N] [--max-pixels N] [--iters N] [--threads N]
//                   [--out pixel_values.f32]
//
// Prints one JSON line: {"mean_ms", "min_ms", "median_ms", "shape", "threads", "iters"}. Decoding the image is not
// timed (the Python side starts from a decoded PIL image too).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "processor/image_processor.h"

namespace {

[[noreturn]] void usage(const char* message) {
  std::fprintf(stderr,
               "%s\nusage: bench_processor --config DIR --image FILE [--min-pixels N] [--max-pixels N] "
               "[--iters N] [--threads N] [--out FILE]\n",
               message);
  std::exit(2);
}

long long parse_int(const char* flag, const char* text) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0') usage((std::string(flag) + " needs an integer, got '" + text + "'").c_str());
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config, image_path, out_path;
  vlm::ImageProcessorOverrides overrides;
  int iters = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + arg).c_str());
    const char* value = argv[++i];
    if (arg == "--config") config = value;
    else if (arg == "--image") image_path = value;
    else if (arg == "--out") out_path = value;
    else if (arg == "--min-pixels") overrides.min_pixels = parse_int("--min-pixels", value);
    else if (arg == "--max-pixels") overrides.max_pixels = parse_int("--max-pixels", value);
    else if (arg == "--iters") iters = static_cast<int>(parse_int("--iters", value));
    else if (arg == "--threads") overrides.num_threads = static_cast<int>(parse_int("--threads", value));
    else usage(("unknown option " + arg).c_str());
  }
  if (config.empty() || image_path.empty()) usage("--config and --image are required");
  if (iters < 1) usage("--iters must be at least 1");
  try {
    const auto processor = vlm::ImageProcessor::load(config, overrides);
    const vlm::RgbImage image = vlm::load_image(image_path);
    vlm::ProcessedImages result = processor->process(image);  // warm-up
    std::vector<double> ms;
    for (int i = 0; i < iters; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      result = processor->process(image);
      const auto t1 = std::chrono::steady_clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    if (!out_path.empty()) {
      vlm::write_file_atomic(out_path, std::string_view(reinterpret_cast<const char*>(result.pixel_values.data()),
                                                        result.pixel_values.size() * sizeof(float)));
    }
    double sum = 0;
    for (double v : ms) sum += v;
    std::sort(ms.begin(), ms.end());
    std::string shape;
    for (std::size_t i = 0; i < result.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(result.shape[i]);
    std::printf("{\"mean_ms\": %.4f, \"min_ms\": %.4f, \"median_ms\": %.4f, \"shape\": [%s], \"threads\": %d, "
                "\"iters\": %d}\n",
                sum / iters, ms.front(), ms[ms.size() / 2], shape.c_str(), overrides.num_threads, iters);
  } catch (const vlm::Error& e) {
    std::fprintf(stderr, "bench_processor: %s\n", e.what());
    return 1;
  }
  return 0;
}
