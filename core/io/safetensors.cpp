#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"

namespace vlm {
namespace {

struct DTypeEntry {
  DType dtype;
  const char* name;
  std::size_t size;
};

constexpr DTypeEntry kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},     {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},   {DType::U16, "U16", 2},   {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I32, "I32", 4},   {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},   {DType::F64, "F64", 8},   {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},   {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
};

// Names the format defines that vlmrt deliberately does not load (sub-byte and exotic types).
constexpr const char* kKnownUnsupported[] = {"F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "C64"};

[[noreturn]] void corrupt(const std::string& label, const std::string& what) {
  fail(ErrorCode::corrupt_data,
       "invalid safetensors file " + label + ": " + what +
           " (the file is truncated or was not written by a safetensors writer; re-download or re-export it)");
}

std::uint64_t read_le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  *out = a * b;
  return true;
}

}  // namespace

const char* dtype_name(DType dtype) {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e.name;
  return "?";
}

std::size_t dtype_size(DType dtype) {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e.size;
  return 0;
}

bool parse_dtype(const std::string& name, DType* out) {
  for (const auto& e : kDTypes) {
    if (name == e.name) {
      *out = e.dtype;
      return true;
    }
  }
  return false;
}

std::int64_t TensorInfo::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

SafetensorsHeader parse_safetensors_header(const std::uint8_t* bytes, std::size_t file_size,
                                           const std::string& label) {
  if (file_size < 8) {
    corrupt(label, "the file has " + std::to_string(file_size) + " bytes, fewer than the 8-byte header length");
  }
  const std::uint64_t header_len = read_le64(bytes);
  if (header_len > kMaxSafetensorsHeader) {
    corrupt(label, "the header length field says " + std::to_string(header_len) +
                       " bytes, more than the format's limit of " + std::to_string(kMaxSafetensorsHeader));
  }
  if (header_len > file_size - 8) {
    corrupt(label, "the header length field says " + std::to_string(header_len) + " bytes but only " +
                       std::to_string(file_size - 8) + " bytes follow it");
  }
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  nlohmann::json doc = nlohmann::json::parse(text, text + header_len, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) corrupt(label, "the header is not valid JSON");
  if (!doc.is_object()) corrupt(label, "the header is not a JSON object");

  SafetensorsHeader header;
  header.data_start = 8 + static_cast<std::size_t>(header_len);
  const std::size_t data_size = file_size - header.data_start;

  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) corrupt(label, "__metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) corrupt(label, "__metadata__ value of \"" + m.key() + "\" is not a string");
        header.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor \"" + name + "\"";
    if (!entry.is_object()) corrupt(label, where + " is not described by an object");
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) corrupt(label, where + " has no dtype string");
    if (shape_it == entry.end() || !shape_it->is_array()) corrupt(label, where + " has no shape array");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
      corrupt(label, where + " has no [begin, end] data_offsets");
    }
    TensorInfo info;
    info.name = name;
    const std::string dtype = dtype_it->get<std::string>();
    if (!parse_dtype(dtype, &info.dtype)) {
      for (const char* known : kKnownUnsupported) {
        if (dtype == known) {
          fail(ErrorCode::unsupported, "safetensors file " + label + ": " + where + " has dtype " + dtype +
                                           ", which vlmrt does not support; convert the checkpoint to F32, F16 or BF16");
        }
      }
      corrupt(label, where + " has unknown dtype \"" + dtype + "\"");
    }
    std::uint64_t expected = dtype_size(info.dtype);
    for (const auto& d : *shape_it) {
      if (!d.is_number_unsigned()) corrupt(label, where + " has a shape entry that is not a non-negative integer");
      std::uint64_t dim = d.get<std::uint64_t>();
      if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          !checked_mul(expected, dim, &expected)) {
        corrupt(label, where + " has a shape whose byte size overflows");
      }
      info.shape.push_back(static_cast<std::int64_t>(dim));
    }
    const auto& begin = (*offsets_it)[0];
    const auto& end = (*offsets_it)[1];
    if (!begin.is_number_unsigned() || !end.is_number_unsigned()) {
      corrupt(label, where + " has data_offsets that are not non-negative integers");
    }
    const std::uint64_t b = begin.get<std::uint64_t>(), e = end.get<std::uint64_t>();
    if (b > e) corrupt(label, where + " has data_offsets with begin " + std::to_string(b) + " > end " + std::to_string(e));
    if (e > data_size) {
      corrupt(label, where + " ends at data offset " + std::to_string(e) + " but the data region has only " +
                         std::to_string(data_size) + " bytes");
    }
    if (e - b != expected) {
      corrupt(label, where + " occupies " + std::to_string(e - b) + " bytes but its dtype " + dtype + " and shape need " +
                         std::to_string(expected));
    }
    info.begin = static_cast<std::size_t>(b);
    info.end = static_cast<std::size_t>(e);
    header.tensors.push_back(std::move(info));
  }

  std::stable_sort(header.tensors.begin(), header.tensors.end(),
                   [](const TensorInfo& a, const TensorInfo& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  // The reference reader requires the tensors to tile the data region exactly: no overlap, no gap, and no
  // trailing bytes. Anything else means a damaged or hand-made file.
  std::size_t cursor = 0;
  for (const auto& t : header.tensors) {
    if (t.begin < cursor) {
      corrupt(label, "tensor \"" + t.name + "\" overlaps the previous tensor (it starts at data offset " +
                         std::to_string(t.begin) + ", before " + std::to_string(cursor) + ")");
    }
    if (t.begin > cursor) {
      corrupt(label, "there is a gap of " + std::to_string(t.begin - cursor) + " unused bytes before tensor \"" + t.name + "\"");
    }
    cursor = t.end;
  }
  if (cursor != data_size) {
    corrupt(label, "the tensors cover " + std::to_string(cursor) + " bytes of data but the data region has " +
                       std::to_string(data_size) + " bytes");
  }
  return header;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->file_ = MappedFile::open(path);
  file->header_ = parse_safetensors_header(file->file_->data(), file->file_->size(), path);
  for (std::size_t i = 0; i < file->header_.tensors.size(); ++i) file->index_[file->header_.tensors[i].name] = i;
  return file;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

const TensorInfo& SafetensorsFile::at(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (info == nullptr) fail(ErrorCode::not_found, "tensor \"" + name + "\" is not in " + path());
  return *info;
}

namespace {

// The header text (padded) and the tensors in data order, after validating names and sizes.
struct Layout {
  std::string header;
  std::vector<const TensorBytes*> order;
  std::size_t data_size = 0;
};

Layout plan_layout(const std::vector<TensorBytes>& tensors, const std::map<std::string, std::string>& metadata) {
  Layout layout;
  std::set<std::string> names;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__") fail(ErrorCode::invalid_argument, "a tensor may not be named __metadata__");
    if (!names.insert(t.name).second) fail(ErrorCode::invalid_argument, "duplicate tensor name \"" + t.name + "\"");
    std::uint64_t expected = dtype_size(t.dtype);
    for (auto d : t.shape) {
      if (d < 0) fail(ErrorCode::invalid_argument, "tensor \"" + t.name + "\" has a negative dimension");
      expected *= static_cast<std::uint64_t>(d);
    }
    if (expected != t.nbytes) {
      fail(ErrorCode::invalid_argument, "tensor \"" + t.name + "\" has " + std::to_string(t.nbytes) +
                                            " bytes but its dtype and shape need " + std::to_string(expected));
    }
    layout.order.push_back(&t);
  }
  std::sort(layout.order.begin(), layout.order.end(), [](const TensorBytes* a, const TensorBytes* b) {
    std::size_t sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  // ordered_json keeps insertion order: __metadata__ first, then the tensors in data order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::size_t offset = 0;
  for (const TensorBytes* t : layout.order) {
    header[t->name] = {{"dtype", dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", {offset, offset + t->nbytes}}};
    offset += t->nbytes;
  }
  layout.data_size = offset;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) layout.header.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  layout.header += text;
  return layout;
}

}  // namespace

std::string serialize_safetensors(const std::vector<TensorBytes>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  Layout layout = plan_layout(tensors, metadata);
  std::string out = std::move(layout.header);
  out.reserve(out.size() + layout.data_size);
  for (const TensorBytes* t : layout.order) out.append(static_cast<const char*>(t->data), t->nbytes);
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorBytes>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  Layout layout = plan_layout(tensors, metadata);  // validates before anything is created
  AtomicFile out(path);
  out.write(layout.header);
  for (const TensorBytes* t : layout.order) out.write(t->data, t->nbytes);  // streamed, never duplicated
  out.commit();
}

}  // namespace vlm
