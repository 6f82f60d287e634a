#include "pipeline/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace vlm {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<long long>(std::llround(seconds));
  const long long h = total / 3600, m = (total / 60) % 60, s = total % 60;
  char buf[48];
  if (h > 0) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, s);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", m, s);
  }
  return buf;
}

std::string format_progress_line(const std::string& label, std::int64_t done, std::int64_t total,
                                  double elapsed_seconds, int width, const std::string& extra) {
  std::string line = label;
  char buf[160];
  if (total > 0) {
    const std::int64_t shown = done < 0 ? 0 : (done > total ? total : done);
    if (width > 0) {
      const auto filled = static_cast<std::size_t>(shown * width / total);
      line += " [" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
    }
    std::snprintf(buf, sizeof buf, " %3d%% %lld/%lld", static_cast<int>(shown * 100 / total),
                  static_cast<long long>(done), static_cast<long long>(total));
    line += buf;
  } else {
    std::snprintf(buf, sizeof buf, " %lld", static_cast<long long>(done));
    line += buf;
  }
  if (done > 0 && elapsed_seconds > 0.05) {
    const double rate = static_cast<double>(done) / elapsed_seconds;
    // Slow tasks (a training step of a large model) read better as seconds per unit.
    if (rate >= 1.0) {
      std::snprintf(buf, sizeof buf, " %.2f it/s", rate);
    } else {
      std::snprintf(buf, sizeof buf, " %.2f s/it", 1.0 / rate);
    }
    line += buf;
    if (total > 0 && done < total) {
      line += " ETA " + format_duration(static_cast<double>(total - done) / rate);
    } else {
      line += " in " + format_duration(elapsed_seconds);
    }
  }
  if (!extra.empty()) line += " " + extra;
  return line;
}

ProgressDisplay::ProgressDisplay(std::FILE* out, Mode mode, double line_interval_seconds)
    : out_(out), mode_(out ? mode : Mode::off), line_interval_(line_interval_seconds) {}

ProgressDisplay::~ProgressDisplay() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (active_ && mode_ == Mode::bars && bar_visible_) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
}

ProgressDisplay::Mode ProgressDisplay::detect_mode(std::FILE* out) {
  if (!out) return Mode::off;
  const char* term = std::getenv("TERM");
  if (isatty(fileno(out)) && !(term && std::strcmp(term, "dumb") == 0)) return Mode::bars;
  return Mode::lines;
}

void ProgressDisplay::begin(const std::string& label, std::int64_t total) {
  end();
  std::lock_guard<std::mutex> lock(mutex_);
  label_ = label;
  total_ = total;
  done_ = 0;
  extra_.clear();
  active_ = true;
  last_drawn_done_ = -1;
  start_ = last_draw_ = std::chrono::steady_clock::now();
  if (mode_ == Mode::bars) draw(false);
}

void ProgressDisplay::update(std::int64_t done, const std::string& extra) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!active_ || mode_ == Mode::off) return;
  done_ = done;
  extra_ = extra;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (mode_ == Mode::bars) {
    if (since >= 0.1 || done_ == total_) draw(false);
  } else if (since >= line_interval_ || last_drawn_done_ < 0) {
    draw(false);
  }
}

void ProgressDisplay::end() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!active_) return;
  if (mode_ != Mode::off && done_ != last_drawn_done_) draw(true);
  if (mode_ == Mode::bars && bar_visible_) std::fputc('\n', out_);
  if (mode_ != Mode::off) std::fflush(out_);
  bar_visible_ = false;
  active_ = false;
}

void ProgressDisplay::log(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (mode_ == Mode::off) return;
  clear_bar();
  std::fprintf(out_, "%s\n", line.c_str());
  if (mode_ == Mode::bars && active_) draw(false);
  std::fflush(out_);
}

void ProgressDisplay::clear_bar() {
  if (mode_ == Mode::bars && bar_visible_) {
    std::fputs("\r\033[2K", out_);
    bar_visible_ = false;
  }
}

void ProgressDisplay::draw(bool final_line) {
  (void)final_line;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (mode_ == Mode::bars) {
    clear_bar();
    std::fputs(format_progress_line(label_, done_, total_, elapsed, 24, extra_).c_str(), out_);
    bar_visible_ = true;
  } else {
    std::fprintf(out_, "%s\n", format_progress_line(label_, done_, total_, elapsed, 0, extra_).c_str());
  }
  std::fflush(out_);
  last_draw_ = now;
  last_drawn_done_ = done_;
}

}  // namespace vlm
