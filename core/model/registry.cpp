#include "model/registry.h"

#include <torch/torch.h>

#include <dlfcn.h>
#include <sched.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <new>

#include "base/error.h"
#include "base/log.h"
#include "io/hub.h"
#include "model/families.h"
#include "model/layers.h"
#include "model/matvec.h"

namespace vlm {

torch::ScalarType parse_model_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "float") return torch::kFloat;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  if (name == "float16" || name == "fp16" || name == "half") return torch::kHalf;
  fail(ErrorCode::invalid_argument, "dtype '" + name + "' is not supported; use float32, bfloat16 or float16");
}

void check_dtype_supported(const LoadOptions& options) {
  if (options.dtype != torch::kFloat && options.dtype != torch::kBFloat16 && options.dtype != torch::kHalf) {
    fail(ErrorCode::invalid_argument, std::string("model dtype ") + c10::toString(options.dtype) +
                                          " is not supported; use float32, bfloat16 or float16");
  }
}

std::vector<std::int64_t> read_token_ids(const ConfigObject& object, const std::string& key) {
  if (!object.has(key)) return {};
  const auto& value = object.raw().at(key);
  if (value.is_number_integer()) return {value.get<std::int64_t>()};
  return object.get<std::vector<std::int64_t>>(key);
}

const std::vector<ModelFamily>& model_families() {
  static const std::vector<ModelFamily> families = {
      {"qwen2_vl", create_qwen2_vl},
      {"qwen2_5_vl", create_qwen2_vl},
      {"qwen2", create_causal_lm},
      {"llama", create_causal_lm},
      {"llava", create_llava},
  };
  return families;
}

std::vector<std::string> supported_model_types() {
  std::vector<std::string> out;
  for (const auto& family : model_families()) out.push_back(family.model_type);
  return out;
}

std::unique_ptr<VisionLanguageModel> create_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                                  const LoadOptions& options) {
  check_dtype_supported(options);
  for (const auto& family : model_families()) {
    if (family.model_type != config.model_type) continue;
    auto model = family.create(config, checkpoint, options);
    if (options.coded_decode_weights && coded_weights_allowed_by_environment()) code_decode_weights(*model);
    return model;
  }
  std::string supported;
  for (const auto& type : supported_model_types()) supported += (supported.empty() ? "" : ", ") + type;
  fail(ErrorCode::unsupported, config.raw.file() + ": model_type '" + config.model_type +
                                   "' is not supported by vlmrt (supported: " + supported + ")");
}

bool coded_weights_allowed_by_environment() {
  const char* env = std::getenv("VLMRT_CODED_WEIGHTS");
  return !(env && std::strcmp(env, "0") == 0);
}

bool coded_weights_serve(std::int64_t decode_rows) { return decode_rows <= coded_weight_max_rows(); }

std::int64_t code_decode_weights(VisionLanguageModel& model) {
  if (model.dtype() != torch::kBFloat16 || !model.device().is_cpu() || kernel_isa() < KernelIsa::avx2) {
    return 0;
  }
  const std::string& prefix = model.info().language_model_prefix;
  std::int64_t coded = 0, values = 0, coded_bytes = 0;
  double escaped_blocks = 0, blocks = 0;
  for (const auto& item : model.module().named_modules("", /*include_self=*/false)) {
    auto projection = std::dynamic_pointer_cast<ProjectionImpl>(item.value());
    const std::string& path = item.key();
    if (!projection || !(prefix.empty() || path.rfind(prefix, 0) == 0 || path == "lm_head")) continue;
    std::shared_ptr<const CodedBf16Weight> form;
    try {
      form = CodedBf16Weight::encode(projection->weight);
    } catch (const std::bad_alloc&) {
      // The copies are an optimisation: without memory for them the model still runs, reading the weights.
      log(LogLevel::warning, "not enough memory for the coded copy of " + path +
                                 "; its decode steps read the bfloat16 weight itself");
      continue;
    }
    if (!form) continue;
    ++coded;
    values += projection->weight.numel();
    coded_bytes += form->coded_bytes();
    const double weight_blocks = static_cast<double>(projection->weight.numel() / CodedBf16Weight::block);
    blocks += weight_blocks;
    escaped_blocks += form->escaped_block_fraction() * weight_blocks;
    projection->set_coded_weight(std::move(form));
  }
  if (coded > 0) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "decode steps read %lld language-model weights in their 12-bit coded form: %.1f MB instead of "
                  "%.1f MB (%.2f %% of blocks escaped); VLMRT_CODED_WEIGHTS=0 turns this off",
                  static_cast<long long>(coded), static_cast<double>(coded_bytes) / 1e6,
                  static_cast<double>(values) * 2 / 1e6, 100.0 * escaped_blocks / blocks);
    log(LogLevel::info, line);
  }
  return coded;
}

namespace {

// glibc hands blocks above its mmap threshold (dynamic, 128 KB rising to at most 32 MB as such blocks are freed)
// to mmap and returns them at free, so a forward pass that allocates and frees the same tens of MB per op faults
// them in, zeroed, again and again: 18 % of a bfloat16 prefill's CPU time was the kernel's page faults. Keeping
// blocks up to 32 MB on the heap took the benchmark model's time to first token from 3.9-4.2 s to 3.1-3.4 s
// (bfloat16, 2-core Zen 5 EPYC) for 105 MB more peak memory. A user's own malloc settings stand.
void tune_malloc() {
#if defined(__GLIBC__)
  if (!malloc_tuning_wanted()) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

}  // namespace

bool malloc_tuning_wanted() {
#if defined(__GLIBC__)
  if (const char* choice = std::getenv("VLMRT_MALLOC_TUNING"); choice && std::strcmp(choice, "0") == 0) return false;
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_")) return false;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return !(tunables && std::strstr(tunables, "glibc.malloc."));
#else
  return false;
#endif
}

void configure_process_for_models() {
  static std::once_flag once;
  std::call_once(once, [] {
    tune_malloc();
    // libtorch counts physical cores and starts with 1 intra-op thread on a 2-vCPU machine. Use every CPU this
    // process may run on unless the user chose (VLMRT_NUM_THREADS, or OMP_NUM_THREADS which libtorch honours).
    int threads = 0;
    if (const char* chosen = std::getenv("VLMRT_NUM_THREADS")) {
      threads = std::atoi(chosen);
    } else if (std::getenv("OMP_NUM_THREADS") == nullptr) {
      cpu_set_t set;
      if (sched_getaffinity(0, sizeof(set), &set) == 0) threads = CPU_COUNT(&set);
    }
    if (threads > 0 && threads != torch::get_num_threads()) torch::set_num_threads(threads);
    // OpenBLAS's pthread build (openblas_get_parallel() == 1) runs its own threads next to libtorch's OpenMP pool;
    // both spin for the same cores and matmul-heavy work (prefill, training) runs ~25% slower on 2 cores.
    using GetParallel = int (*)();
    if (auto get_parallel = reinterpret_cast<GetParallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"))) {
      if (get_parallel() == 1 && torch::get_num_threads() > 1) {
        log(LogLevel::warning,
            "OpenBLAS is its pthread build, whose threads compete with libtorch's OpenMP threads; select the OpenMP "
            "build (scripts/install_deps.sh does: update-alternatives --set libopenblas.so.0-<arch> "
            ".../openblas-openmp/libopenblas.so.0, and the same for libblas.so.3 and liblapack.so.3)");
      }
    }
  });
}

std::unique_ptr<VisionLanguageModel> load_model(const std::string& folder_or_hub_id, const LoadOptions& options) {
  configure_process_for_models();
  const auto location = locate_model(folder_or_hub_id);
  const auto config_path = (std::filesystem::path(location.folder) / "config.json").string();
  if (!std::filesystem::exists(config_path)) {
    fail(ErrorCode::not_found, location.folder + " has no config.json; pass the folder of a Hugging Face model");
  }
  const auto config = ModelConfig::load(config_path);
  const auto checkpoint = Checkpoint::open(location.folder, "model");
  return create_model(config, *checkpoint, options);
}

}  // namespace vlm
