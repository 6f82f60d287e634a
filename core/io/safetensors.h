// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON describing every tensor (dtype, shape, [begin, end) offsets into the data
// region), then the data region. This layer is torch-free: it validates and memory-maps files and hands
// out raw views; core/io/tensor_io.h turns those views into torch tensors without copying.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/fs.h"

namespace vlm {

// Every dtype the safetensors format defines that vlmrt can represent.
enum class DType {
  BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, F8_E4M3, F8_E5M2,
};

const char* dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);
// Parses a safetensors dtype name ("F32", "BF16"...). Returns false for names it does not know.
bool parse_dtype(const std::string& name, DType* out);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::size_t begin = 0;  // offsets relative to the start of the data region
  std::size_t end = 0;
  std::size_t nbytes() const { return end - begin; }
  std::int64_t numel() const;
};

// The largest header the reference implementation accepts (100 MB).
constexpr std::size_t kMaxSafetensorsHeader = 100'000'000;

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // ordered by data offset
  std::map<std::string, std::string> metadata;
  std::size_t data_start = 0;       // byte offset of the data region in the file (8 + N)
};

// Parses and fully validates a header against a file of `file_size` bytes whose first bytes are `bytes`
// (at least min(file_size, 8 + N) of them). `label` names the file in error messages.
SafetensorsHeader parse_safetensors_header(const std::uint8_t* bytes, std::size_t file_size,
                                           const std::string& label);

class SafetensorsFile {
 public:
  // Maps and validates the file. Throws vlm::Error naming the file (and tensor) on any problem.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const TensorInfo* find(const std::string& name) const;
  // Throws vlm::Error(not_found) naming the file and the tensor.
  const TensorInfo& at(const std::string& name) const;
  const std::uint8_t* data(const TensorInfo& info) const {
    return file_->data() + header_.data_start + info.begin;
  }
  std::uint8_t* mutable_data(const TensorInfo& info) const {
    return file_->mutable_data() + header_.data_start + info.begin;
  }
  // The tensor's whole pages out of this process's resident memory, once a copy of it was made
  // (MappedFile::page_out).
  bool page_out(const TensorInfo& info) const {
    return file_->page_out(header_.data_start + info.begin, info.nbytes());
  }

 private:
  std::shared_ptr<MappedFile> file_;
  SafetensorsHeader header_;
  std::unordered_map<std::string, std::size_t> index_;
};

// A tensor to be written: raw little-endian bytes of a contiguous array.
struct TensorBytes {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
  std::size_t nbytes = 0;
};

// Writes a safetensors file atomically (temporary file, then rename). Tensors are laid out by decreasing
// element size, then by name, so every tensor is aligned to its element size (the header is padded to a
// multiple of 8 bytes with spaces, as the reference writer does). Validates sizes and duplicate names.
void write_safetensors(const std::string& path, const std::vector<TensorBytes>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Serialises to memory (what write_safetensors writes), for tests and in-memory use.
std::string serialize_safetensors(const std::vector<TensorBytes>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

}  // namespace vlm
