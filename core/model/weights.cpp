#include "model/weights.h"

#include <torch/torch.h>

#include <set>
#include <sstream>
#include <vector>

#include "base/error.h"
#include "tensor/tensor_io.h"

namespace vlm {
namespace {

std::string shape_string(c10::IntArrayRef shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

void list_section(std::ostringstream& out, const char* title, const std::vector<std::string>& items) {
  if (items.empty()) return;
  constexpr std::size_t kShown = 20;
  out << "\n  " << title << " (" << items.size() << "): ";
  for (std::size_t i = 0; i < items.size() && i < kShown; ++i) out << (i ? ", " : "") << items[i];
  if (items.size() > kShown) out << ", ... and " << items.size() - kShown << " more";
}

// The dtypes a floating-point weight may be stored in (the model converts between them). An integer or boolean
// tensor is not a weight in another precision: run silently, it would give meaningless logits.
bool is_floating_dtype(DType dtype) {
  switch (dtype) {
    case DType::F16: case DType::BF16: case DType::F32: case DType::F64: case DType::F8_E4M3: case DType::F8_E5M2:
      return true;
    default:
      return false;
  }
}

}  // namespace

void load_weights(torch::nn::Module& root, const Checkpoint& checkpoint, const WeightLoadPlan& plan) {
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> params;
  for (const auto& item : root.named_parameters(/*recurse=*/true)) params.emplace(item.key(), item.value());

  std::vector<std::string> unexpected, wrong_shape, wrong_dtype, missing;
  std::set<std::string> loaded, misshapen;
  std::map<std::string, std::string> source_key;
  for (const auto& key : checkpoint.names()) {
    const std::string name = plan.rename ? plan.rename(key) : key;
    // A tied head saved anyway is ignored: transformers ties it to its source all the same.
    if (plan.tied.count(name)) continue;
    auto it = params.find(name);
    if (it == params.end()) {
      unexpected.push_back(key);
      continue;
    }
    if (loaded.count(name)) {
      unexpected.push_back(key + " (duplicate of " + source_key[name] + ")");
      continue;
    }
    auto entry = checkpoint.get(key);
    const auto& shape = entry.info->shape;
    if (c10::IntArrayRef(shape) != it->second.sizes()) {
      wrong_shape.push_back(key + " is " + shape_string(shape) + " in the checkpoint, the model expects " +
                            shape_string(it->second.sizes()));
      misshapen.insert(name);
      continue;
    }
    if (it->second.is_floating_point() && !is_floating_dtype(entry.info->dtype)) {
      wrong_dtype.push_back(key + " is stored as " + dtype_name(entry.info->dtype) +
                            "; a weight must be floating point (F32, F16, BF16, F64 or F8)");
      misshapen.insert(name);
      continue;
    }
    loaded.insert(name);
    source_key[name] = key;
  }
  for (const auto& [name, tensor] : params) {
    if (loaded.count(name) || misshapen.count(name)) continue;
    if (plan.tied.count(name)) continue;  // shares its source's tensor; the source is checked itself
    missing.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty() || !wrong_shape.empty() || !wrong_dtype.empty()) {
    std::ostringstream out;
    out << checkpoint.source() << ": the checkpoint does not match the " << plan.family
        << " model that config.json describes";
    list_section(out, "missing tensors", missing);
    list_section(out, "unexpected tensors", unexpected);
    list_section(out, "wrongly shaped tensors", wrong_shape);
    list_section(out, "tensors of a dtype no weight can have", wrong_dtype);
    out << "\n  Check that config.json belongs to these weights (and that the checkpoint is complete).";
    fail(ErrorCode::corrupt_data, out.str());
  }

  for (const auto& name : loaded) {
    const auto entry = checkpoint.get(source_key[name]);
    auto tensor = tensor_from_file(entry.file, *entry.info);
    if (tensor.scalar_type() != plan.dtype || tensor.device() != plan.device) {
      tensor = tensor.to(plan.device, plan.dtype);  // a copy; otherwise the mmap view is used as is
      // The file's pages of a converted tensor would otherwise stay resident until the checkpoint closes: a
      // float32 checkpoint loaded as bfloat16 peaked at 3x the model's size (6.8 GB for the 1.1B-parameter
      // benchmark model, 2.4 GB once loaded).
      entry.file->page_out(*entry.info);
    }
    params[name].set_data(tensor);
  }
  for (const auto& [target, source] : plan.tied) {
    if (params.count(target) && params.count(source)) params[target].set_data(params.at(source));
  }
}

}  // namespace vlm
