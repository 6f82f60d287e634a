#include "io/hub.h"

#include <cstdlib>
#include <optional>

#include "base/fs.h"
#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;
using vlm::test::ScopedEnv;
using vlm::test::TempDir;

namespace {

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";
const std::string kOther = "fedcba9876543210fedcba9876543210fedcba98";

void make_cached_repo(const std::string& cache) {
  const std::string repo = cache + "/models--Org--Tiny-Model";
  vlm::test::write_bytes(repo + "/refs/main", kCommit + "\n");
  vlm::test::write_bytes(repo + "/refs/v1", kOther);
  vlm::test::write_bytes(repo + "/snapshots/" + kCommit + "/config.json", "{}");
  vlm::test::write_bytes(repo + "/snapshots/" + kOther + "/config.json", "{}");
}

}  // namespace

TEST_CASE("cache folder precedence follows huggingface_hub") {
  ScopedEnv env;
  env.set("HF_HUB_CACHE", "/x/hub-cache");
  env.set("HF_HOME", "/y/hf-home");
  CHECK(hf_hub_cache_dir() == "/x/hub-cache");
  env.set("HF_HUB_CACHE", nullptr);
  CHECK(hf_hub_cache_dir() == "/y/hf-home/hub");
  env.set("HF_HOME", nullptr);
  env.set("XDG_CACHE_HOME", "/z/xdg");
  CHECK(hf_hub_cache_dir() == "/z/xdg/huggingface/hub");
  env.set("XDG_CACHE_HOME", nullptr);
  env.set("HOME", "/home/u");
  CHECK(hf_hub_cache_dir() == "/home/u/.cache/huggingface/hub");
}

TEST_CASE("Hub ids resolve to snapshots in the offline cache") {
  TempDir dir;
  ScopedEnv env;
  env.set("HF_HUB_CACHE", dir.path().c_str());
  make_cached_repo(dir.path());
  auto loc = locate_model("Org/Tiny-Model");
  CHECK(loc.folder == dir.path() + "/models--Org--Tiny-Model/snapshots/" + kCommit);
  CHECK(loc.repo_id == "Org/Tiny-Model");
  CHECK(loc.commit == kCommit);
  CHECK(locate_model("Org/Tiny-Model@v1").commit == kOther);
  CHECK(locate_model("Org/Tiny-Model@" + kOther).folder == dir.path() + "/models--Org--Tiny-Model/snapshots/" + kOther);
  // A local folder is used as is.
  CHECK(locate_model(dir.path()).folder == dir.path());
  CHECK(locate_model(dir.path()).repo_id.empty());
}

TEST_CASE("a missing model lists where it looked and how to get it") {
  TempDir dir;
  ScopedEnv env;
  env.set("HF_HUB_CACHE", dir.path().c_str());
  make_cached_repo(dir.path());
  expect_error([] { locate_model("Qwen/Qwen2-VL-2B-Instruct"); }, ErrorCode::not_found,
               {"never downloads", "models--Qwen--Qwen2-VL-2B-Instruct/refs/main (missing)", "huggingface-cli download Qwen/Qwen2-VL-2B-Instruct"});
  expect_error([] { locate_model("Org/Tiny-Model@v2"); }, ErrorCode::not_found, {"refs/v2 (missing)", "Snapshots present", kCommit});
  expect_error([] { locate_model("./no/such/folder"); }, ErrorCode::not_found, {"./no/such/folder", "does not exist"});
  expect_error([] { locate_model(""); }, ErrorCode::invalid_argument, {"empty"});
  vlm::test::write_bytes(dir.file("file.txt"), "x");
  expect_error([&] { locate_model(dir.file("file.txt")); }, ErrorCode::invalid_argument, {"is a file"});
}

TEST_CASE("repo id shape") {
  CHECK(looks_like_repo_id("Qwen/Qwen2.5-VL-3B-Instruct"));
  CHECK(looks_like_repo_id("gpt2"));
  CHECK_FALSE(looks_like_repo_id("a/b/c"));
  CHECK_FALSE(looks_like_repo_id("a--b/c"));
  CHECK_FALSE(looks_like_repo_id("../x"));
  CHECK_FALSE(looks_like_repo_id("has space/x"));
}
