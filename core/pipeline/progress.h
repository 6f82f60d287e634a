// Progress display for the pipeline programs: on a terminal one redrawn bar per task with rate and ETA; on
// anything else (a log file, a CI console) plain lines, at most one per `line_interval_seconds` plus the last.
// Log lines are printed between bars without breaking them.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace vlm {

// "0:07", "12:03", "1:02:03"; "?" for a negative or non-finite value.
std::string format_duration(double seconds);

// One progress line: "train qwen__r16 [#######.............]  35% 7/20 1.75 it/s ETA 0:07 loss 1.2345".
// width = the bar's character count (0: no bar). rate and ETA appear once some time has passed and some work
// has been done; total <= 0 prints only the count.
std::string format_progress_line(const std::string& label, std::int64_t done, std::int64_t total,
                                 double elapsed_seconds, int width, const std::string& extra);

class ProgressDisplay {
 public:
  enum class Mode { off, lines, bars };
  // Mode::bars only makes sense when `out` is a terminal; detect_mode() decides.
  ProgressDisplay(std::FILE* out, Mode mode, double line_interval_seconds = 10.0);
  ~ProgressDisplay();
  // bars when `out` is a terminal (isatty) and TERM is not "dumb", else lines.
  static Mode detect_mode(std::FILE* out);

  // Starts a task (ends the previous one).
  void begin(const std::string& label, std::int64_t total);
  // done units of the task's total; extra is appended (e.g. "loss 1.23").
  void update(std::int64_t done, const std::string& extra = "");
  // Ends the task: the bar stays on screen with its final value.
  void end();
  // A message line (never cut into a bar).
  void log(const std::string& line);
  Mode mode() const { return mode_; }

 private:
  void draw(bool final_line);
  void clear_bar();

  std::FILE* out_;
  Mode mode_;
  double line_interval_;
  std::mutex mutex_;
  std::string label_, extra_;
  std::int64_t total_ = 0, done_ = 0;
  bool active_ = false, bar_visible_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::int64_t last_drawn_done_ = -1;
};

}  // namespace vlm
