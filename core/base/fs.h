// File-system helpers: whole-file reads, memory mapping, and atomic writes.
//
// Every output vlmrt writes goes through AtomicFile (or write_file_atomic): the bytes land in a temporary
// file next to the target, are flushed to disk, and only then renamed over the target. A crash or an error
// midway leaves the previous file intact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace vlm {

// Reads a whole file. Throws vlm::Error (not_found / io) naming the path.
std::string read_file(const std::string& path);

// A read-only view of a file mapped into memory. Pages are mapped copy-on-write (MAP_PRIVATE), so a
// consumer that writes into a tensor aliasing the mapping gets private pages and never modifies the file.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::uint8_t* data() const { return static_cast<const std::uint8_t*>(data_); }
  std::uint8_t* mutable_data() const { return static_cast<std::uint8_t*>(data_); }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // For a caller that copied [offset, offset + length) out and will not read it again soon: asks the kernel to
  // take the pages wholly inside that range out of this process (MADV_PAGEOUT), so they stop counting towards its
  // resident memory. Nothing is lost: unwritten pages are read from the file again when touched, written
  // (copy-on-write) ones are kept. Returns false where the kernel does not take the advice (before Linux 5.4),
  // which changes nothing else.
  bool page_out(std::size_t offset, std::size_t length) const;

 private:
  MappedFile() = default;
  void* data_ = nullptr;
  std::size_t size_ = 0;
  std::string path_;
};

// Writes to "<target>.tmp-<pid>-<n>" and renames onto the target on commit(). If the object is destroyed
// without commit() (an exception unwound past it), the temporary file is removed and the target untouched.
class AtomicFile {
 public:
  explicit AtomicFile(std::string target_path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Flushes, fsyncs, closes and renames. Throws vlm::Error(io) on failure (target untouched).
  void commit();
  const std::string& target_path() const { return target_; }

 private:
  std::string target_;
  std::string temp_;
  int fd_ = -1;
  bool committed_ = false;
};

void write_file_atomic(const std::string& path, std::string_view content);

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
bool is_regular_file(const std::string& path);
// Creates a directory and its parents; throws vlm::Error(io) naming the path on failure.
void create_directories(const std::string& path);
std::string join_path(const std::string& a, const std::string& b);

// Throws vlm::Error(invalid_argument) when `path` (after resolving symlinks of its existing part) is a place no
// output folder may be: the root, a top-level system folder (/etc, /usr, /tmp, ...) or one folder below /usr,
// anything under /proc, /sys or /dev, or the home folder itself. `what` names the setting in the message
// ("output_dir", "--output-dir").
void check_output_folder(const std::string& path, const std::string& what);

}  // namespace vlm
