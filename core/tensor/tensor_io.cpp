#include "tensor/tensor_io.h"

#include <torch/torch.h>
#include <torch/version.h>

#include "base/error.h"

namespace vlm {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors is little-endian; big-endian hosts need byte swapping");

#define VLM_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

torch::ScalarType to_scalar_type(DType dtype, const std::string& tensor_name) {
  switch (dtype) {
    case DType::BOOL: return torch::kBool;
    case DType::U8: return torch::kUInt8;
    case DType::I8: return torch::kInt8;
    case DType::I16: return torch::kInt16;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::I32: return torch::kInt32;
    case DType::F32: return torch::kFloat32;
    case DType::F64: return torch::kFloat64;
    case DType::I64: return torch::kInt64;
#if VLM_TORCH_AT_LEAST(2, 3)
    case DType::U16: return torch::kUInt16;
    case DType::U32: return torch::kUInt32;
    case DType::U64: return torch::kUInt64;
#endif
#if VLM_TORCH_AT_LEAST(2, 1)
    case DType::F8_E4M3: return at::ScalarType::Float8_e4m3fn;
    case DType::F8_E5M2: return at::ScalarType::Float8_e5m2;
#endif
    default: break;
  }
  fail(ErrorCode::unsupported, std::string("dtype ") + dtype_name(dtype) +
                                   (tensor_name.empty() ? "" : " of tensor \"" + tensor_name + "\"") +
                                   " is not available in the libtorch this build uses (" TORCH_VERSION
                                   "); convert the checkpoint to F32, F16 or BF16");
}

DType from_scalar_type(torch::ScalarType type, const std::string& tensor_name) {
  for (DType d : {DType::BOOL, DType::U8, DType::I8, DType::I16, DType::F16, DType::BF16, DType::I32, DType::F32,
                  DType::F64, DType::I64}) {
    if (to_scalar_type(d) == type) return d;
  }
#if VLM_TORCH_AT_LEAST(2, 3)
  if (type == torch::kUInt16) return DType::U16;
  if (type == torch::kUInt32) return DType::U32;
  if (type == torch::kUInt64) return DType::U64;
#endif
#if VLM_TORCH_AT_LEAST(2, 1)
  if (type == at::ScalarType::Float8_e4m3fn) return DType::F8_E4M3;
  if (type == at::ScalarType::Float8_e5m2) return DType::F8_E5M2;
#endif
  fail(ErrorCode::unsupported, std::string("tensor ") + (tensor_name.empty() ? "" : "\"" + tensor_name + "\" ") +
                                   "has torch type " + c10::toString(type) + ", which safetensors cannot store");
}

torch::Tensor tensor_from_file(const std::shared_ptr<SafetensorsFile>& file, const TensorInfo& info) {
  const torch::ScalarType type = to_scalar_type(info.dtype, info.name);
  const auto options = torch::TensorOptions().dtype(type);
  std::uint8_t* data = file->mutable_data(info);
  if (info.dtype == DType::BOOL) {
    // torch assumes bools are 0 or 1; any other byte would be undefined behaviour downstream.
    for (std::size_t i = 0; i < info.nbytes(); ++i) {
      if (data[i] > 1) {
        fail(ErrorCode::corrupt_data, "tensor \"" + info.name + "\" in " + file->path() + " is BOOL but holds byte value " +
                                          std::to_string(data[i]) + " at element " + std::to_string(i));
      }
    }
  }
  const std::size_t element = dtype_size(info.dtype);
  if (reinterpret_cast<std::uintptr_t>(data) % element != 0) {
    auto out = torch::empty(info.shape, options);
    std::memcpy(out.data_ptr(), data, info.nbytes());
    return out;
  }
  std::shared_ptr<SafetensorsFile> keep_alive = file;
  return torch::from_blob(data, info.shape, [keep_alive](void*) mutable { keep_alive.reset(); }, options);
}

torch::Tensor load_tensor(const Checkpoint& checkpoint, const std::string& name) {
  auto entry = checkpoint.get(name);
  return tensor_from_file(entry.file, *entry.info);
}

std::map<std::string, torch::Tensor> load_all_tensors(const Checkpoint& checkpoint) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& name : checkpoint.names()) out.emplace(name, load_tensor(checkpoint, name));
  return out;
}

namespace {

// Contiguous CPU copies of the tensors, plus raw views of them for the writer.
struct HostTensors {
  std::vector<torch::Tensor> owned;
  std::vector<TensorBytes> views;
};

HostTensors to_host(const NamedTensors& tensors) {
  HostTensors host;
  host.owned.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) fail(ErrorCode::invalid_argument, "tensor \"" + name + "\" is undefined");
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    host.owned.push_back(t);
    TensorBytes view;
    view.name = name;
    view.dtype = from_scalar_type(t.scalar_type(), name);
    view.shape.assign(t.sizes().begin(), t.sizes().end());
    view.data = t.data_ptr();
    view.nbytes = t.numel() * t.element_size();
    host.views.push_back(view);
  }
  return host;
}

}  // namespace

void save_tensors(const std::string& path, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  HostTensors host = to_host(tensors);
  write_safetensors(path, host.views, metadata);
}

void save_checkpoint(const std::string& folder, const NamedTensors& tensors, std::size_t max_shard_bytes,
                     const std::map<std::string, std::string>& metadata, const std::string& stem) {
  HostTensors host = to_host(tensors);
  write_checkpoint(folder, host.views, max_shard_bytes, metadata, stem);
}

}  // namespace vlm
