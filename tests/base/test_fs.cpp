#include "base/fs.h"

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
