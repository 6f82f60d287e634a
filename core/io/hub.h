// Finding a model on disk without the network: a local folder, or a Hugging Face Hub id resolved in the
// offline Hugging Face cache (the layout huggingface_hub writes: models--Org--Name/refs/<rev> holds a commit
// hash, models--Org--Name/snapshots/<hash>/ holds the files).
#pragma once

#include <string>
#include <vector>

namespace vlm {

struct ModelLocation {
  std::string folder;    // the folder holding config.json, safetensors, tokenizer files...
  std::string repo_id;   // "Org/Name" when resolved from the cache, else ""
  std::string revision;  // the branch/tag/commit asked for, when resolved from the cache
  std::string commit;    // the snapshot's commit hash, when resolved from the cache
};

// The cache folders searched, in order: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
// (the same precedence as huggingface_hub). Only the first that applies is used, as huggingface_hub does.
std::string hf_hub_cache_dir();

// True when `ref` has the shape of a Hub repository id ("Org/Name" or a legacy "name").
bool looks_like_repo_id(const std::string& ref);

// Resolves `ref`: an existing folder is used as is; otherwise "Org/Name[@revision]" is looked up in the cache
// (revision: a branch or tag under refs/, or a commit hash; default "main"). Throws vlm::Error(not_found)
// listing every place it looked and how to obtain the model.
ModelLocation locate_model(const std::string& ref);

}  // namespace vlm
