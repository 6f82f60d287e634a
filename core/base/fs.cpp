#include "base/fs.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "base/error.h"

namespace vlm {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

[[noreturn]] void fail_open(const std::string& path, int err) {
  if (err == ENOENT) fail(ErrorCode::not_found, "file not found: " + path);
  fail(ErrorCode::io, "cannot open " + path + ": " + errno_text(err));
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

// Opens a regular file for reading and fills *st. O_NONBLOCK makes the open itself return at once on a FIFO
// (a plain open would wait for a writer, uninterruptibly for the user); anything but a regular file is refused.
int open_regular_file(const std::string& path, struct stat* st) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) fail_open(path, errno);
  if (::fstat(fd, st) != 0) {
    int err = errno;
    ::close(fd);
    fail(ErrorCode::io, "cannot stat " + path + ": " + errno_text(err));
  }
  if (!S_ISREG(st->st_mode)) {
    ::close(fd);
    fail(ErrorCode::invalid_argument,
         path + " is " + file_kind(st->st_mode) + ", not a regular file; give the path of a file");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

}  // namespace

std::string read_file(const std::string& path) {
  struct stat st {};
  int fd = open_regular_file(path, &st);
  std::string out;
  out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      fail(ErrorCode::io, "cannot read " + path + ": " + errno_text(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  struct stat st {};
  int fd = open_regular_file(path, &st);
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<std::size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail(ErrorCode::io, "cannot map " + path + " into memory: " + errno_text(err));
    }
    file->data_ = p;
  }
  ::close(fd);
  return file;
}

bool MappedFile::page_out(std::size_t offset, std::size_t length) const {
#ifdef MADV_PAGEOUT
  if (data_ == nullptr || offset >= size_) return false;
  length = std::min(length, size_ - offset);
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(data_) + offset;
  const std::uintptr_t first = (begin + page - 1) / page * page, last = (begin + length) / page * page;
  if (last <= first) return true;  // no whole page inside: nothing of this range alone to give back
  return ::madvise(reinterpret_cast<void*>(first), last - first, MADV_PAGEOUT) == 0;
#else
  (void)offset;
  (void)length;
  return false;
#endif
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

AtomicFile::AtomicFile(std::string target_path) : target_(std::move(target_path)) {
  static std::atomic<unsigned> counter{0};
  temp_ = target_ + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    fail(ErrorCode::io, "cannot create " + temp_ + " (to write " + target_ + "): " + errno_text(errno));
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::write(const void* data, std::size_t size) {
  if (fd_ < 0) fail(ErrorCode::internal, "write to " + target_ + " after commit");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(ErrorCode::io, "cannot write " + target_ + ": " + errno_text(errno));
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) fail(ErrorCode::internal, "double commit of " + target_);
  if (::fsync(fd_) != 0) fail(ErrorCode::io, "cannot flush " + target_ + ": " + errno_text(errno));
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) fail(ErrorCode::io, "cannot close " + target_ + ": " + errno_text(errno));
  if (::rename(temp_.c_str(), target_.c_str()) != 0) {
    fail(ErrorCode::io, "cannot rename " + temp_ + " to " + target_ + ": " + errno_text(errno));
  }
  committed_ = true;
}

void write_file_atomic(const std::string& path, std::string_view content) {
  AtomicFile file(path);
  file.write(content);
  file.commit();
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void create_directories(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) fail(ErrorCode::io, "cannot create directory " + path + ": " + ec.message());
}

std::string join_path(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (!b.empty() && b.front() == '/') return b;
  return a.back() == '/' ? a + b : a + "/" + b;
}

void check_output_folder(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  if (path.empty()) fail(ErrorCode::invalid_argument, what + " is empty; give the folder the outputs go to");
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) resolved = fs::absolute(path).lexically_normal();
  std::string text = resolved.string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  static const char* const kSystemFolders[] = {"/",     "/bin",  "/boot", "/dev",  "/etc", "/home", "/lib",
                                               "/lib32", "/lib64", "/libx32", "/media", "/mnt", "/opt", "/proc",
                                               "/root", "/run",  "/sbin", "/srv",  "/sys", "/tmp",  "/usr",
                                               "/var"};
  bool refused = false;
  for (const char* folder : kSystemFolders) refused = refused || text == folder;
  // One level below /usr (/usr/lib, /usr/local, ...) and /var (/var/lib, /var/tmp, ...) is still system space.
  for (const char* parent : {"/usr/", "/var/"})
    if (text.rfind(parent, 0) == 0 && text.find('/', std::string(parent).size()) == std::string::npos) refused = true;
  for (const char* tree : {"/proc/", "/sys/", "/dev/"})
    if (text.rfind(tree, 0) == 0) refused = true;
  if (const char* home = std::getenv("HOME"); home && *home) {
    std::string h = fs::weakly_canonical(home, ec).string();
    while (h.size() > 1 && h.back() == '/') h.pop_back();
    if (!ec && text == h) refused = true;
  }
  if (refused)
    fail(ErrorCode::invalid_argument, what + " \"" + path + "\"" + (text != path ? " (" + text + ")" : "") +
                                          " is a system or home folder; give a folder of its own (e.g. ./results/my_experiment)");
}

}  // namespace vlm
