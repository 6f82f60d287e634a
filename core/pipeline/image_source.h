// Images named by a data row: a local path (relative to the CSV's folder, or absolute), a file:// URL, or an
// http(s):// URL fetched with libcurl into a content-addressed cache.
//
// Cache layout (under ImageFetchOptions::cache_dir):
//   objects/<sha256 of the bytes>     the downloaded bytes, written atomically, verified against the name on use
//   urls/<sha256 of the URL>          the sha256 of the bytes that URL served (one line of hex)
// A URL is downloaded once; later uses read the object (a damaged or missing object is downloaded again).
// Only bytes that decode as an image are cached. Several URLs serving the same bytes share one object.
#pragma once

#include <cstdint>
#include <string>

#include "image/image.h"

namespace vlm {

struct ImageFetchOptions {
  std::string cache_dir;  // "" = $XDG_CACHE_HOME/vlmrt/images or ~/.cache/vlmrt/images
  long connect_timeout_ms = 10000;
  long timeout_ms = 60000;       // the whole transfer
  int retries = 2;               // further tries after a transient failure (timeout, reset, truncated, 5xx, 429)
  std::uint64_t max_bytes = 64ull << 20;  // a larger response is refused (limit_exceeded)
};

// `ref` is a local path (relative to base_dir when relative), a file:// URL or an http(s):// URL. Errors name the
// reference, and the CSV row when given through `context` (e.g. "data/val.csv row 3 (line 4)"): not_found for a
// missing file or an HTTP 404/410, io for network failures and timeouts, limit_exceeded for too many bytes,
// corrupt_data / unsupported for bytes that are not a PNG or JPEG image.
RgbImage load_image_reference(const std::string& ref, const std::string& base_dir, const ImageFetchOptions& options,
                              const std::string& context = "");

// ---- building blocks, exposed for tests and the cache tools ------------------------------------------------

bool is_remote_image_reference(const std::string& ref);  // http:// or https:// (case-insensitive scheme)
// The local path a non-remote reference names (file:// decoded, relative paths joined to base_dir).
std::string local_image_path(const std::string& ref, const std::string& base_dir);
std::string default_image_cache_dir();
// Lower-case hex SHA-256 (FIPS 180-4).
std::string sha256_hex(const void* data, std::size_t size);
// Downloads an http(s) URL into the cache (or finds it there) and returns the cached file's path.
std::string fetch_to_cache(const std::string& url, const ImageFetchOptions& options);

}  // namespace vlm
