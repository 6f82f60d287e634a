// Loading a model folder (or an offline Hub id) into the VisionLanguageModel of its family. The family comes from
// config.json's model_type through a registry table; weights are loaded strictly (see model/weights.h).
#pragma once

#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/hf_files.h"
#include "model/model.h"

namespace vlm {

struct LoadOptions {
  torch::ScalarType dtype = torch::kFloat;  // float32, bfloat16 or float16
  torch::Device device = torch::kCPU;
  // bfloat16 on a CPU with AVX2 or AVX-512: the language model's projection weights also get a 12-bit coded copy
  // (CodedBf16Weight, model/matvec.h) that decode steps read instead, a quarter fewer bytes per token for the same
  // results, at 3/4 of those weights' size in extra memory. Off here, or with VLMRT_CODED_WEIGHTS=0 in the
  // environment, decode steps read the weights themselves.
  bool coded_decode_weights = true;
};

// False when the environment turns coded weights off (VLMRT_CODED_WEIGHTS=0); create_model honours it.
bool coded_weights_allowed_by_environment();

// Whether decode steps of `decode_rows` rows at a time (batch size x beams) would read coded weights: only the
// few-row kernel reads them, up to coded_weight_max_rows() rows (model/matvec.h); for more rows the copies would
// cost memory for nothing. Evaluation sets LoadOptions::coded_decode_weights from it.
bool coded_weights_serve(std::int64_t decode_rows);

// Gives the language model's projections (and the LM head) of a bfloat16 CPU model their coded copies for decode
// steps, where the CPU has AVX2 or AVX-512; create_model calls it when LoadOptions::coded_decode_weights is set.
// Returns how many weights were coded (0 for other dtypes, devices and CPUs).
std::int64_t code_decode_weights(VisionLanguageModel& model);

// "float32"/"fp32"/"float", "bfloat16"/"bf16", "float16"/"fp16"/"half" -> the torch type; else vlm::Error.
torch::ScalarType parse_model_dtype(const std::string& name);

using ModelFactory = std::function<std::unique_ptr<VisionLanguageModel>(
    const ModelConfig& config, const Checkpoint& checkpoint, const LoadOptions& options)>;

struct ModelFamily {
  std::string model_type;  // config.json "model_type"
  ModelFactory create;
};

// Every supported model_type, in a fixed order.
const std::vector<ModelFamily>& model_families();
std::vector<std::string> supported_model_types();

// Process-wide CPU settings, applied once per process (load_model calls it): libtorch's intra-op thread count =
// the CPUs available (VLMRT_NUM_THREADS overrides; OMP_NUM_THREADS set: libtorch's own choice); with glibc, malloc
// keeps blocks up to 32 MB on its heap (M_MMAP_THRESHOLD 32 MB, M_TRIM_THRESHOLD 256 MB) unless the environment
// sets malloc's own (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, glibc.malloc.* in GLIBC_TUNABLES) or
// VLMRT_MALLOC_TUNING=0; and a warning when OpenBLAS is its pthread build.
void configure_process_for_models();
// Whether configure_process_for_models sets malloc's thresholds: glibc, and none of the environment settings above.
bool malloc_tuning_wanted();

// Builds the model from an already opened config and checkpoint.
std::unique_ptr<VisionLanguageModel> create_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                                  const LoadOptions& options = {});

// Resolves `folder_or_hub_id` (see io/hub.h), reads config.json and the safetensors weights, and builds the model.
std::unique_ptr<VisionLanguageModel> load_model(const std::string& folder_or_hub_id, const LoadOptions& options = {});

}  // namespace vlm
