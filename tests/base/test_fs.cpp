#include "base/fs.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_util.h"

using namespace vlm;
using vlm::test::TempDir;

TEST_CASE("AtomicFile replaces the target only on commit") {
  TempDir dir;
  const std::string target = dir.file("out.txt");
  write_file_atomic(target, "old");
  {
    AtomicFile file(target);
    file.write("new content");
    // Not committed: an exception unwinding here must leave the old file.
  }
  CHECK(read_file(target) == "old");
  {
    AtomicFile file(target);
    file.write("new content");
    file.commit();
  }
  CHECK(read_file(target) == "new content");
  // No temporary files are left behind.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);
}

TEST_CASE("read_file and MappedFile report missing files by path") {
  TempDir dir;
  vlm::test::expect_error([&] { read_file(dir.file("nope.bin")); }, ErrorCode::not_found, {"nope.bin"});
  vlm::test::expect_error([&] { MappedFile::open(dir.file("nope.bin")); }, ErrorCode::not_found, {"nope.bin"});
  vlm::test::expect_error([&] { MappedFile::open(dir.path()); }, ErrorCode::invalid_argument, {"is a directory"});
  vlm::test::expect_error([&] { AtomicFile f(dir.file("missing-dir/x")); }, ErrorCode::io, {"missing-dir/x"});
}

TEST_CASE("MappedFile maps copy-on-write") {
  TempDir dir;
  write_file_atomic(dir.file("a"), "abcdef");
  auto map = MappedFile::open(dir.file("a"));
  REQUIRE(map->size() == 6);
  map->mutable_data()[0] = 'X';  // private page: the file keeps its content
  CHECK(read_file(dir.file("a")) == "abcdef");
  write_file_atomic(dir.file("empty"), "");
  CHECK(MappedFile::open(dir.file("empty"))->size() == 0);
}

namespace {

// Resident kilobytes of the mapping that starts at `start`, from /proc/self/smaps (-1 when not found).
long mapping_rss_kb(const void* start) {
  std::ifstream smaps("/proc/self/smaps");
  char head[32];
  std::snprintf(head, sizeof head, "%lx-", static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(start)));
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    if (line.rfind(head, 0) == 0) inside = true;
    else if (inside && line.rfind("Rss:", 0) == 0) return std::stol(line.substr(4));
  }
  return -1;
}

}  // namespace

TEST_CASE("MappedFile::page_out gives resident pages back and keeps every byte") {
  TempDir dir;
  const std::size_t size = 4 << 20;
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 131 % 251);
  write_file_atomic(dir.file("big"), bytes);
  auto map = MappedFile::open(dir.file("big"));
  map->mutable_data()[size / 2] = 'W';  // one private (copy-on-write) page
  auto touch = [&] {
    long sum = 0;
    for (std::size_t i = 0; i < size; i += 512) sum += map->data()[i];
    return sum;
  };
  CHECK(touch() > 0);
  const long before = mapping_rss_kb(map->data());
  REQUIRE(before >= 1024);  // the kernel may map the file in 2 MB folios, and count them so

  // A range with no whole page inside asks nothing of the kernel.
  CHECK(map->page_out(10, 100));
  CHECK(mapping_rss_kb(map->data()) == before);

  if (map->page_out(0, size)) {
    CHECK(mapping_rss_kb(map->data()) <= 64);
  } else {
    MESSAGE("this kernel does not take MADV_PAGEOUT: page_out must then change nothing");
    CHECK(mapping_rss_kb(map->data()) == before);
  }
  bool same = true;  // the file's bytes read back, the written one kept
  for (std::size_t i = 0; i < size; ++i) {
    const char want = i == size / 2 ? 'W' : bytes[i];
    if (static_cast<char>(map->data()[i]) != want) same = false;
  }
  CHECK(same);
  CHECK_FALSE(map->page_out(size, 10));  // past the end
}

TEST_CASE("path helpers") {
  CHECK(join_path("a", "b") == "a/b");
  CHECK(join_path("a/", "b") == "a/b");
  CHECK(join_path("a", "/abs") == "/abs");
  CHECK(join_path("", "b") == "b");
  TempDir dir;
  create_directories(dir.file("x/y/z"));
  CHECK(is_directory(dir.file("x/y/z")));
  CHECK_FALSE(is_regular_file(dir.file("x/y/z")));
  CHECK(path_exists(dir.file("x")));
}

TEST_CASE("check_output_folder refuses system and home folders, with symlinks resolved") {
  for (const char* bad : {"/", "//", "/etc", "/usr/", "/usr/lib", "/var/tmp", "/tmp", "/proc/self", "/dev/shm/x", "/home"}) {
    CAPTURE(bad);
    vlm::test::expect_error([&] { check_output_folder(bad, "output_dir"); }, ErrorCode::invalid_argument,
                            {"output_dir \"", "is a system or home folder", "./results/"});
  }
  TempDir dir;
  check_output_folder(dir.path(), "output_dir");
  check_output_folder(dir.file("not/yet/made"), "output_dir");
  check_output_folder("/usr/local/share/somewhere/mine", "output_dir");  // deep enough to be a folder of one's own
  // A symlink to the root is the root.
  std::filesystem::create_directory_symlink("/", dir.file("root_link"));
  vlm::test::expect_error([&] { check_output_folder(dir.file("root_link"), "--output-dir"); },
                          ErrorCode::invalid_argument, {"--output-dir", "(/)", "is a system or home folder"});
  vlm::test::expect_error([&] { check_output_folder(dir.file("root_link/etc/.."), "x"); }, ErrorCode::invalid_argument,
                          {"is a system or home folder"});
  vlm::test::expect_error([&] { check_output_folder("", "output_dir"); }, ErrorCode::invalid_argument, {"output_dir is empty"});
  // The home folder itself, not what is below it.
  const char* old_home = std::getenv("HOME");
  const std::string saved = old_home ? old_home : "";
  ::setenv("HOME", dir.path().c_str(), 1);
  vlm::test::expect_error([&] { check_output_folder(dir.path() + "/", "output_dir"); }, ErrorCode::invalid_argument,
                          {"is a system or home folder"});
  check_output_folder(dir.file("results"), "output_dir");
  if (old_home) ::setenv("HOME", saved.c_str(), 1); else ::unsetenv("HOME");
}

TEST_CASE("only regular files are read: a FIFO, a device or a directory is refused at once") {
  TempDir dir;
  const std::string fifo = dir.file("pipe.png");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Without a writer, a blocking open of the FIFO would wait forever; these return at once.
  vlm::test::expect_error([&] { read_file(fifo); }, ErrorCode::invalid_argument,
                          {"pipe.png is a FIFO (named pipe), not a regular file"});
  vlm::test::expect_error([&] { MappedFile::open(fifo); }, ErrorCode::invalid_argument, {"a FIFO (named pipe)"});
  vlm::test::expect_error([&] { read_file("/dev/null"); }, ErrorCode::invalid_argument, {"a character device"});
  vlm::test::expect_error([&] { MappedFile::open(dir.path()); }, ErrorCode::invalid_argument, {"is a directory"});
  vlm::test::expect_error([&] { read_file(dir.path()); }, ErrorCode::invalid_argument, {"is a directory"});
  // A symlink to a regular file is read through.
  write_file_atomic(dir.file("real.txt"), "abc");
  std::filesystem::create_symlink(dir.file("real.txt"), dir.file("link.txt"));
  CHECK(read_file(dir.file("link.txt")) == "abc");
}
