// Images named by data rows: local paths, file:// URLs, and http(s):// URLs served by a small HTTP server that
// runs inside this test process on 127.0.0.1 (an ephemeral port), so no network is needed.
#include "pipeline/image_source.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "base/fs.h"
#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;
using vlm::test::fixture;
using vlm::test::read_bytes;
using vlm::test::TempDir;

namespace {

void send_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
}

std::string response(const std::string& status, const std::string& body, const std::string& type = "image/png") {
  return "HTTP/1.1 " + status + "\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

// A one-connection-at-a-time HTTP/1.1 server with fixed routes; counts the requests per path.
class TestServer {
 public:
  explicit TestServer(std::string png) : png_(std::move(png)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listen_fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TestServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int requests(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    return counts_[path];
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      handle(client);
      ::close(client);
    }
  }

  void handle(int client) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      pollfd p{client, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return;
      ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0) return;
      request.append(buf, static_cast<std::size_t>(n));
    }
    std::size_t sp1 = request.find(' ');
    std::size_t sp2 = request.find(' ', sp1 + 1);
    std::string path = request.substr(sp1 + 1, sp2 - sp1 - 1);
    int count;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      count = ++counts_[path];
    }
    if (path == "/ok.png" || path == "/same-bytes.png" || path == "/big.png") {
      send_all(client, response("200 OK", png_));
    } else if (path == "/missing.png") {
      send_all(client, response("404 Not Found", "no such file", "text/plain"));
    } else if (path == "/forbidden.png") {
      send_all(client, response("403 Forbidden", "no", "text/plain"));
    } else if (path == "/slow.png") {
      // Never answers; waits until the client gives up and closes the connection (or the test ends).
      for (int i = 0; i < 100 && !stop_; ++i) {
        pollfd p{client, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) break;
      }
    } else if (path == "/truncated.png") {
      std::string head = "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: " +
                         std::to_string(png_.size() + 100) + "\r\nConnection: close\r\n\r\n";
      send_all(client, head + png_);
    } else if (path == "/page.html") {
      send_all(client, response("200 OK", "<html><body>not an image</body></html>", "text/html"));
    } else if (path == "/chunked-big.png") {
      // No Content-Length: the size limit must be enforced while the body arrives.
      std::string out = "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
      for (std::size_t at = 0; at < png_.size(); at += 256) {
        std::string piece = png_.substr(at, 256);
        char size_hex[16];
        std::snprintf(size_hex, sizeof size_hex, "%zx", piece.size());
        out += std::string(size_hex) + "\r\n" + piece + "\r\n";
      }
      send_all(client, out + "0\r\n\r\n");
    } else if (path == "/flaky.png") {
      if (count == 1)
        send_all(client, response("503 Service Unavailable", "busy", "text/plain"));
      else
        send_all(client, response("200 OK", png_));
    } else if (path == "/redirect.png") {
      send_all(client, "HTTP/1.1 302 Found\r\nLocation: /ok.png\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    } else {
      send_all(client, response("404 Not Found", "", "text/plain"));
    }
  }

  std::string png_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::map<std::string, int> counts_;
};

ImageFetchOptions quick_options(const std::string& cache_dir) {
  ImageFetchOptions o;
  o.cache_dir = cache_dir;
  o.connect_timeout_ms = 2000;
  o.timeout_ms = 5000;
  o.retries = 0;
  return o;
}

std::string png_bytes() { return read_bytes(fixture("session/square.png")); }

void check_square(const RgbImage& image) {
  RgbImage expected = load_image(fixture("session/square.png"));
  CHECK(image.width == 32);
  CHECK(image.height == 32);
  CHECK(image.pixels == expected.pixels);
}

}  // namespace

TEST_CASE("image source: sha256_hex matches the FIPS 180-4 test vectors") {
  CHECK(sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(sha256_hex(two_blocks.data(), two_blocks.size()) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  CHECK(sha256_hex(million.data(), million.size()) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("image source: local paths, relative to the base folder or absolute, and file:// URLs") {
  TempDir dir;
  create_directories(dir.file("imgs"));
  write_file_atomic(dir.file("imgs/a b.png"), png_bytes());
  ImageFetchOptions o = quick_options(dir.file("cache"));
  check_square(load_image_reference("imgs/a b.png", dir.path(), o));
  check_square(load_image_reference(dir.file("imgs/a b.png"), "/elsewhere", o));
  check_square(load_image_reference("file://" + dir.path() + "/imgs/a%20b.png", "", o));
  check_square(load_image_reference("FILE://localhost" + dir.path() + "/imgs/a%20b.png", "", o));
  CHECK(local_image_path("x.png", "/data") == "/data/x.png");
  CHECK(local_image_path("/abs/x.png", "/data") == "/abs/x.png");
  CHECK(local_image_path("x.png", "") == "x.png");
  CHECK_FALSE(is_remote_image_reference("file:///x.png"));
  CHECK(is_remote_image_reference("HTTPS://example.com/x.png"));
  CHECK_FALSE(std::filesystem::exists(dir.file("cache")));  // local images never touch the cache
}

TEST_CASE("image source: local errors name the reference and the row") {
  TempDir dir;
  write_file_atomic(dir.file("notes.png"), "these are not pixels");
  ImageFetchOptions o = quick_options(dir.file("cache"));
  expect_error([&] { load_image_reference("gone.png", dir.path(), o, "val.csv row 3 (line 4)"); },
               ErrorCode::not_found, {"val.csv row 3 (line 4)", "gone.png"});
  expect_error([&] { load_image_reference("notes.png", dir.path(), o, "val.csv row 1 (line 2)"); },
               ErrorCode::unsupported, {"val.csv row 1 (line 2)", "notes.png", "PNG and JPEG"});
  expect_error([&] { load_image_reference("", dir.path(), o, "row 7"); }, ErrorCode::invalid_argument,
               {"row 7", "empty image reference"});
  expect_error([&] { load_image_reference("ftp://host/x.png", "", o); }, ErrorCode::unsupported,
               {"ftp://host/x.png", "'ftp://'"});
  expect_error([&] { load_image_reference("file://server/share/x.png", "", o); }, ErrorCode::unsupported,
               {"file://server/share/x.png", "'server'"});
  expect_error([&] { load_image_reference("file:///x%zz.png", "", o); }, ErrorCode::invalid_argument,
               {"file:///x%zz.png", "percent"});
}

TEST_CASE("image source: http download into a content-addressed cache, served from the cache afterwards") {
  TempDir dir;
  const std::string png = png_bytes();
  TestServer server(png);
  ImageFetchOptions o = quick_options(dir.file("cache"));
  const std::string url = server.url("/ok.png");

  check_square(load_image_reference(url, "", o, "row 1"));
  CHECK(server.requests("/ok.png") == 1);
  const std::string digest = sha256_hex(png.data(), png.size());
  const std::string index = dir.file("cache/urls/" + sha256_hex(url.data(), url.size()));
  const std::string object = dir.file("cache/objects/" + digest);
  CHECK(read_bytes(index) == digest + "\n");
  CHECK(read_bytes(object) == png);

  // Second use: from the cache, no request.
  check_square(load_image_reference(url, "", o));
  CHECK(server.requests("/ok.png") == 1);
  CHECK(fetch_to_cache(url, o) == object);
  CHECK(server.requests("/ok.png") == 1);

  // Another URL serving the same bytes shares the object.
  CHECK(fetch_to_cache(server.url("/same-bytes.png"), o) == object);
  CHECK(server.requests("/same-bytes.png") == 1);
  std::size_t objects = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("cache/objects"))) {
    (void)entry;
    ++objects;
  }
  CHECK(objects == 1);

  // A damaged object does not match its name: downloaded again and repaired.
  write_file_atomic(object, "garbage");
  check_square(load_image_reference(url, "", o));
  CHECK(server.requests("/ok.png") == 2);
  CHECK(read_bytes(object) == png);

  // Redirects are followed; the cache is keyed by the URL asked for.
  check_square(load_image_reference(server.url("/redirect.png"), "", o));
  CHECK(server.requests("/redirect.png") == 1);
}

TEST_CASE("image source: http errors name the URL and the row, and nothing bad is cached") {
  TempDir dir;
  const std::string png = png_bytes();
  TestServer server(png);
  ImageFetchOptions o = quick_options(dir.file("cache"));

  SUBCASE("404 is not_found, not retried") {
    o.retries = 2;
    const std::string url = server.url("/missing.png");
    expect_error([&] { load_image_reference(url, "", o, "eval.csv row 2 (line 3)"); }, ErrorCode::not_found,
                 {"eval.csv row 2 (line 3)", url, "404"});
    CHECK(server.requests("/missing.png") == 1);
  }
  SUBCASE("403 is an io error, not retried") {
    o.retries = 2;
    const std::string url = server.url("/forbidden.png");
    expect_error([&] { load_image_reference(url, "", o); }, ErrorCode::io, {url, "403"});
    CHECK(server.requests("/forbidden.png") == 1);
  }
  SUBCASE("a server slower than the timeout") {
    o.timeout_ms = 300;
    const std::string url = server.url("/slow.png");
    expect_error([&] { load_image_reference(url, "", o, "row 5"); }, ErrorCode::io, {"row 5", url, "timeout"});
    CHECK(server.requests("/slow.png") == 1);
  }
  SUBCASE("a truncated body (Content-Length larger than what was sent), retried then failed") {
    o.retries = 1;
    const std::string url = server.url("/truncated.png");
    expect_error([&] { load_image_reference(url, "", o); }, ErrorCode::io, {url, "after 2 tries"});
    CHECK(server.requests("/truncated.png") == 2);
  }
  SUBCASE("a page that is not an image") {
    const std::string url = server.url("/page.html");
    expect_error([&] { load_image_reference(url, "", o, "row 9"); }, ErrorCode::unsupported, {"row 9", url});
  }
  SUBCASE("too big, announced by Content-Length") {
    o.max_bytes = 1000;
    const std::string url = server.url("/big.png");
    expect_error([&] { load_image_reference(url, "", o); }, ErrorCode::limit_exceeded, {url, "1000 bytes"});
  }
  SUBCASE("too big, found while a chunked body arrives") {
    o.max_bytes = 1000;
    const std::string url = server.url("/chunked-big.png");
    expect_error([&] { load_image_reference(url, "", o); }, ErrorCode::limit_exceeded, {url, "1000 bytes"});
  }
  SUBCASE("nothing listens on the port") {
    int port;
    {
      TestServer gone(png);
      port = std::stoi(gone.url("").substr(std::string("http://127.0.0.1:").size()));
    }
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/x.png";
    expect_error([&] { load_image_reference(url, "", o); }, ErrorCode::io, {url});
  }
  // Failures leave no cache entries.
  CHECK_FALSE(std::filesystem::exists(dir.file("cache/objects")));
}

TEST_CASE("image source: a transient 503 is retried") {
  TempDir dir;
  TestServer server(png_bytes());
  ImageFetchOptions o = quick_options(dir.file("cache"));
  o.retries = 1;
  check_square(load_image_reference(server.url("/flaky.png"), "", o));
  CHECK(server.requests("/flaky.png") == 2);
  o.retries = 0;
  TestServer fresh(png_bytes());
  expect_error([&] { load_image_reference(fresh.url("/flaky.png"), "", o); }, ErrorCode::io, {"503"});
}

TEST_CASE("image source: the default cache folder follows XDG_CACHE_HOME, then HOME") {
  const char* old_xdg = std::getenv("XDG_CACHE_HOME");
  std::string saved = old_xdg ? old_xdg : "";
  ::setenv("XDG_CACHE_HOME", "/tmp/xdg-test", 1);
  CHECK(default_image_cache_dir() == "/tmp/xdg-test/vlmrt/images");
  ::unsetenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != 0) CHECK(default_image_cache_dir() == std::string(home) + "/.cache/vlmrt/images");
  if (old_xdg != nullptr) ::setenv("XDG_CACHE_HOME", saved.c_str(), 1);
}
