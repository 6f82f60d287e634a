#include "io/hub.h"

#include <cstdlib>
#include <filesystem>
#include <regex>

#include "base/error.h"
#include "base/fs.h"

namespace vlm {
namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string expand_home(const std::string& path) {
  if (path.empty() || path[0] != '~') return path;
  return env_or_empty("HOME") + path.substr(1);
}

std::string trim_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

bool is_commit_hash(const std::string& s) {
  static const std::regex hex("[0-9a-f]{40}");
  return std::regex_match(s, hex);
}

}  // namespace

std::string hf_hub_cache_dir() {
  std::string dir = env_or_empty("HF_HUB_CACHE");
  if (!dir.empty()) return expand_home(dir);
  std::string home = env_or_empty("HF_HOME");
  if (!home.empty()) return join_path(expand_home(home), "hub");
  std::string xdg = env_or_empty("XDG_CACHE_HOME");
  if (!xdg.empty()) return join_path(join_path(expand_home(xdg), "huggingface"), "hub");
  return join_path(env_or_empty("HOME"), ".cache/huggingface/hub");
}

bool looks_like_repo_id(const std::string& ref) {
  // huggingface_hub's validate_repo_id: [\w\-.]{1,96} per part, at most one "/", no "--" or "..".
  static const std::regex id(R"(([A-Za-z0-9_.\-]{1,96}/)?[A-Za-z0-9_.\-]{1,96})");
  if (!std::regex_match(ref, id)) return false;
  if (ref.find("--") != std::string::npos || ref.find("..") != std::string::npos) return false;
  if (ref.front() == '.' || ref.front() == '-' || ref.back() == '.' || ref.back() == '-') return false;
  return true;
}

ModelLocation locate_model(const std::string& ref) {
  if (ref.empty()) fail(ErrorCode::invalid_argument, "the model reference is empty: pass a local folder or a Hub id");
  const std::string expanded = expand_home(ref);
  if (is_directory(expanded)) return ModelLocation{expanded, "", "", ""};

  std::string repo = ref, revision = "main";
  if (auto at = ref.rfind('@'); at != std::string::npos) {
    repo = ref.substr(0, at);
    revision = ref.substr(at + 1);
  }
  const bool path_like = ref[0] == '/' || ref[0] == '.' || ref[0] == '~';
  if (path_like || !looks_like_repo_id(repo) || revision.empty()) {
    if (path_exists(expanded)) fail(ErrorCode::invalid_argument, "model path " + ref + " is a file; expected the model's folder");
    fail(ErrorCode::not_found, "model folder " + ref + " does not exist (and it is not a Hugging Face repository id "
                               "such as \"Org/Name\")");
  }

  const std::string cache = hf_hub_cache_dir();
  std::string flat = repo;
  for (auto pos = flat.find('/'); pos != std::string::npos; pos = flat.find('/')) flat.replace(pos, 1, "--");
  const std::string repo_dir = join_path(cache, "models--" + flat);
  std::vector<std::string> looked = {ref + " (as a local folder)"};

  std::string commit;
  const std::string ref_file = join_path(repo_dir, "refs/" + revision);
  if (is_regular_file(ref_file)) {
    commit = trim_newlines(read_file(ref_file));
    looked.push_back(ref_file + " -> " + commit);
  } else {
    looked.push_back(ref_file + " (missing)");
    if (is_commit_hash(revision)) commit = revision;
  }
  if (!commit.empty()) {
    const std::string snapshot = join_path(repo_dir, "snapshots/" + commit);
    if (is_directory(snapshot)) return ModelLocation{snapshot, repo, revision, commit};
    looked.push_back(snapshot + " (missing)");
  }

  std::string available;
  std::error_code ec;
  if (is_directory(join_path(repo_dir, "snapshots"))) {
    for (const auto& e : std::filesystem::directory_iterator(join_path(repo_dir, "snapshots"), ec)) {
      available += (available.empty() ? "" : ", ") + e.path().filename().string();
    }
  }
  std::string message = "model " + ref + " was not found. vlmrt never downloads; it looked in:\n";
  for (const auto& l : looked) message += "  - " + l + "\n";
  message += "  (Hugging Face cache: " + cache + ", chosen from HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME or ~/.cache)\n";
  if (!available.empty()) message += "Snapshots present for this repository: " + available + " (select one with " + repo + "@<commit>).\n";
  message += "To get the model: on a machine with network access run `huggingface-cli download " + repo +
             "` (or `hf download " + repo + "`), then copy its cache folder models--" + flat + " into " + cache +
             ", or pass the model's local folder instead of the id.";
  fail(ErrorCode::not_found, message);
}

}  // namespace vlm
