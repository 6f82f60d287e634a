#include "pipeline/image_source.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "base/fs.h"

namespace vlm {
namespace {

// ---- SHA-256 (FIPS 180-4) ------------------------------------------------------------------------------------

class Sha256 {
 public:
  void update(const std::uint8_t* data, std::size_t size) {
    length_ += size;
    while (size > 0) {
      std::size_t take = std::min(size, sizeof(block_) - filled_);
      std::memcpy(block_ + filled_, data, take);
      filled_ += take;
      data += take;
      size -= take;
      if (filled_ == sizeof(block_)) {
        compress(block_);
        filled_ = 0;
      }
    }
  }
  std::string hex() {
    std::uint64_t bits = length_ * 8;
    std::uint8_t pad = 0x80;
    update(&pad, 1);
    std::uint8_t zero = 0;
    while (filled_ != 56) update(&zero, 1);
    std::uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(bits >> (56 - 8 * i));
    update(len, 8);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (std::uint32_t word : state_)
      for (int shift = 28; shift >= 0; shift -= 4) out += digits[(word >> shift) & 15];
    return out;
  }

 private:
  static std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void compress(const std::uint8_t* p) {
    static const std::uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (std::uint32_t(p[4 * i]) << 24) | (std::uint32_t(p[4 * i + 1]) << 16) |
             (std::uint32_t(p[4 * i + 2]) << 8) | std::uint32_t(p[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
    std::uint32_t e = state_[4], f = state_[5], g = state_[6], h = state_[7];
    for (int i = 0; i < 64; ++i) {
      std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state_[0] += a;
    state_[1] += b;
    state_[2] += c;
    state_[3] += d;
    state_[4] += e;
    state_[5] += f;
    state_[6] += g;
    state_[7] += h;
  }

  std::uint32_t state_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::uint8_t block_[64] = {};
  std::size_t filled_ = 0;
  std::uint64_t length_ = 0;
};

std::string lower_ascii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "scheme://" with an RFC 3986 scheme name, or "" when the reference has none (a plain path).
std::string url_scheme(const std::string& ref) {
  std::size_t colon = ref.find("://");
  if (colon == std::string::npos || colon == 0) return "";
  for (std::size_t i = 0; i < colon; ++i) {
    unsigned char c = static_cast<unsigned char>(ref[i]);
    bool ok = std::isalpha(c) || (i > 0 && (std::isdigit(c) || c == '+' || c == '-' || c == '.'));
    if (!ok) return "";
  }
  return lower_ascii(ref.substr(0, colon));
}

std::string percent_decode(const std::string& s, const std::string& ref) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      auto hexval = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      int hi = i + 2 < s.size() ? hexval(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        fail(ErrorCode::invalid_argument, "image reference '" + ref + "': bad percent escape at '" + s.substr(i, 3) +
                                              "' (write a literal % as %25)");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string with_context(const std::string& context, const std::string& message) {
  return context.empty() ? message : context + ": " + message;
}

void ensure_curl_initialised() {
  static std::once_flag once;
  static CURLcode status = CURLE_OK;
  std::call_once(once, [] { status = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (status != CURLE_OK)
    fail(ErrorCode::internal, std::string("libcurl failed to initialise: ") + curl_easy_strerror(status));
}

struct Download {
  std::string body;
  std::uint64_t max_bytes = 0;
  bool too_big = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* download = static_cast<Download*>(user);
  std::size_t n = size * count;
  if (download->max_bytes != 0 && download->body.size() + n > download->max_bytes) {
    download->too_big = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  download->body.append(data, n);
  return n;
}

struct CurlHandle {
  CURL* curl = curl_easy_init();
  ~CurlHandle() {
    if (curl != nullptr) curl_easy_cleanup(curl);
  }
};

// One HTTP(S) GET with every safety limit, retried after transient failures. Throws vlm::Error.
std::string http_get(const std::string& url, const ImageFetchOptions& options) {
  ensure_curl_initialised();
  const int tries = std::max(0, options.retries) + 1;
  std::string last_error;
  for (int attempt = 0; attempt < tries; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(std::min(250 << (attempt - 1), 4000)));
    CurlHandle handle;
    if (handle.curl == nullptr) fail(ErrorCode::out_of_memory, "cannot create a libcurl handle for '" + url + "'");
    Download download;
    download.max_bytes = options.max_bytes;
    char error_buffer[CURL_ERROR_SIZE] = {0};
    CURL* c = handle.curl;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, options.connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, options.timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "vlmrt");
    if (options.max_bytes != 0)
      curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_bytes));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &download);

    CURLcode result = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    std::string tries_text = attempt > 0 ? " (after " + std::to_string(attempt + 1) + " tries)" : "";

    if (download.too_big || result == CURLE_FILESIZE_EXCEEDED)
      fail(ErrorCode::limit_exceeded, "image '" + url + "' is larger than the limit of " +
                                          std::to_string(options.max_bytes) +
                                          " bytes; raise the download size limit if the image is trusted");
    if (result == CURLE_OK) {
      if (status == 200 || (status >= 200 && status < 300 && !download.body.empty())) return std::move(download.body);
      if (status == 404 || status == 410)
        fail(ErrorCode::not_found, "image '" + url + "' does not exist (HTTP " + std::to_string(status) +
                                       "); check the URL in the data file");
      bool transient = status == 408 || status == 429 || status >= 500;
      last_error = "HTTP status " + std::to_string(status);
      if (!transient)
        fail(ErrorCode::io, "cannot download image '" + url + "': the server answered " + last_error +
                                "; check the URL and whether it needs access rights");
      continue;
    }
    last_error = error_buffer[0] != 0 ? std::string(error_buffer) : curl_easy_strerror(result);
    bool transient = result == CURLE_OPERATION_TIMEDOUT || result == CURLE_COULDNT_CONNECT ||
                     result == CURLE_PARTIAL_FILE || result == CURLE_RECV_ERROR || result == CURLE_SEND_ERROR ||
                     result == CURLE_GOT_NOTHING || result == CURLE_COULDNT_RESOLVE_HOST ||
                     result == CURLE_SSL_CONNECT_ERROR || result == CURLE_HTTP2 || result == CURLE_HTTP2_STREAM;
    if (!transient) break;
    if (attempt + 1 == tries) {
      std::string hint = result == CURLE_OPERATION_TIMEDOUT
                             ? "; the server is too slow or unreachable: raise the timeout or check the network"
                             : "; check the network and the server";
      fail(ErrorCode::io, "cannot download image '" + url + "': " + last_error + tries_text + hint);
    }
  }
  fail(ErrorCode::io, "cannot download image '" + url + "': " + last_error + "; check the URL and the network");
}

bool is_hex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The cached bytes of a URL when present and intact.
bool read_cached(const std::string& cache_dir, const std::string& url, std::string& bytes, std::string& object_path) {
  std::string index = join_path(join_path(cache_dir, "urls"), sha256_hex(url.data(), url.size()));
  if (!is_regular_file(index)) return false;
  std::string digest;
  try {
    digest = read_file(index);
  } catch (const Error&) {
    return false;
  }
  while (!digest.empty() && (digest.back() == '\n' || digest.back() == '\r' || digest.back() == ' ')) digest.pop_back();
  if (!is_hex64(digest)) return false;
  std::string object = join_path(join_path(cache_dir, "objects"), digest);
  if (!is_regular_file(object)) return false;
  try {
    bytes = read_file(object);
  } catch (const Error&) {
    return false;
  }
  if (sha256_hex(bytes.data(), bytes.size()) != digest) return false;  // damaged: download again
  object_path = object;
  return true;
}

std::string store_cached(const std::string& cache_dir, const std::string& url, const std::string& bytes) {
  std::string digest = sha256_hex(bytes.data(), bytes.size());
  std::string objects = join_path(cache_dir, "objects");
  std::string urls = join_path(cache_dir, "urls");
  create_directories(objects);
  create_directories(urls);
  std::string object = join_path(objects, digest);
  bool intact = false;
  if (is_regular_file(object)) {
    try {
      std::string existing = read_file(object);
      intact = sha256_hex(existing.data(), existing.size()) == digest;
    } catch (const Error&) {
    }
  }
  if (!intact) write_file_atomic(object, bytes);
  write_file_atomic(join_path(urls, sha256_hex(url.data(), url.size())), digest + "\n");
  return object;
}

std::string resolved_cache_dir(const ImageFetchOptions& options) {
  return options.cache_dir.empty() ? default_image_cache_dir() : options.cache_dir;
}

// Cached or downloaded bytes of a URL, decoded; only bytes that decode are stored.
RgbImage fetch_image(const std::string& url, const ImageFetchOptions& options, std::string* object_path) {
  std::string cache_dir = resolved_cache_dir(options);
  std::string bytes, object;
  if (read_cached(cache_dir, url, bytes, object)) {
    if (object_path != nullptr) *object_path = object;
    return decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "'" + url + "'");
  }
  bytes = http_get(url, options);
  RgbImage image = decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(),
                                "'" + url + "' (downloaded " + std::to_string(bytes.size()) + " bytes)");
  object = store_cached(cache_dir, url, bytes);
  if (object_path != nullptr) *object_path = object;
  return image;
}

}  // namespace

std::string sha256_hex(const void* data, std::size_t size) {
  Sha256 hash;
  hash.update(static_cast<const std::uint8_t*>(data), size);
  return hash.hex();
}

bool is_remote_image_reference(const std::string& ref) {
  std::string scheme = url_scheme(ref);
  return scheme == "http" || scheme == "https";
}

std::string default_image_cache_dir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return join_path(join_path(xdg, "vlmrt"), "images");
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != 0) return join_path(join_path(join_path(home, ".cache"), "vlmrt"), "images");
  fail(ErrorCode::invalid_argument,
       "no folder for the image download cache: neither XDG_CACHE_HOME nor HOME is set; set one or name a cache folder");
}

std::string local_image_path(const std::string& ref, const std::string& base_dir) {
  if (ref.empty()) fail(ErrorCode::invalid_argument, "empty image reference; give a path or a URL");
  std::string scheme = url_scheme(ref);
  if (scheme == "file") {
    std::string rest = ref.substr(7);
    std::size_t slash = rest.find('/');
    std::string host = slash == std::string::npos ? rest : rest.substr(0, slash);
    if (!host.empty() && lower_ascii(host) != "localhost")
      fail(ErrorCode::unsupported, "image reference '" + ref + "' names the host '" + host +
                                       "'; file:// URLs must name a local file (file:///path)");
    if (slash == std::string::npos) fail(ErrorCode::invalid_argument, "image reference '" + ref + "' has no path");
    return percent_decode(rest.substr(slash), ref);
  }
  if (!scheme.empty())
    fail(ErrorCode::unsupported, "image reference '" + ref + "' uses the scheme '" + scheme +
                                     "://'; use a local path, a file:// URL or an http(s):// URL");
  if (ref[0] == '/' || base_dir.empty()) return ref;
  return join_path(base_dir, ref);
}

std::string fetch_to_cache(const std::string& url, const ImageFetchOptions& options) {
  if (!is_remote_image_reference(url))
    fail(ErrorCode::invalid_argument, "'" + url + "' is not an http:// or https:// URL");
  std::string object;
  fetch_image(url, options, &object);
  return object;
}

RgbImage load_image_reference(const std::string& ref, const std::string& base_dir, const ImageFetchOptions& options,
                              const std::string& context) {
  try {
    if (is_remote_image_reference(ref)) return fetch_image(ref, options, nullptr);
    std::string path = local_image_path(ref, base_dir);
    try {
      return load_image(path);
    } catch (const Error& e) {
      if (path == ref) throw;
      throw Error(e.code(), std::string(e.what()) + " (image reference '" + ref + "')");
    }
  } catch (const Error& e) {
    if (context.empty()) throw;
    throw Error(e.code(), with_context(context, e.what()));
  }
}

}  // namespace vlm
