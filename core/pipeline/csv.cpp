#include "pipeline/csv.h"

#include <unordered_set>

#include "base/error.h"
#include "base/fs.h"

namespace vlm {
namespace {

// Length of the valid UTF-8 sequence at text[i], or 0 when it is invalid (overlong forms, surrogates and code
// points above U+10FFFF included), as Python's strict decoder judges it.
std::size_t utf8_sequence_length(const std::string& text, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

void check_utf8(const std::string& text, const std::string& label) {
  std::int64_t line = 1;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n'))) ++line;
    std::size_t n = utf8_sequence_length(text, i);
    if (n == 0)
      fail(ErrorCode::corrupt_data, label + ":" + std::to_string(line) + ": invalid UTF-8 (byte " +
                                        std::to_string(i) + "); save the file as UTF-8");
    i += n;
  }
}

[[noreturn]] void fail_at(const std::string& label, std::int64_t line, const std::string& what) {
  fail(ErrorCode::corrupt_data, label + ":" + std::to_string(line) + ": " + what);
}

}  // namespace

std::optional<std::size_t> CsvTable::find_column(const std::string& name) const {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  return std::nullopt;
}

std::size_t CsvTable::column(const std::string& name) const {
  if (auto index = find_column(name)) return *index;
  std::string have;
  for (const auto& h : header) have += (have.empty() ? "'" : ", '") + h + "'";
  fail(ErrorCode::invalid_argument,
       path + ": no column '" + name + "'; the file has the columns " + have +
           " (name the column to use, or add it to the header line)");
}

CsvTable parse_csv(const std::string& input, const std::string& label) {
  std::size_t start = 0;
  if (input.size() >= 3 && input.compare(0, 3, "\xEF\xBB\xBF") == 0) start = 3;
  check_utf8(input, label);

  CsvTable table;
  table.path = label;
  std::vector<std::vector<std::string>> records;
  std::vector<std::int64_t> record_lines;

  std::vector<std::string> record;
  std::string field;
  std::int64_t line = 1;
  std::int64_t record_line = 1;
  bool field_started = false;  // the record has at least one character (blank lines have none)
  const std::size_t n = input.size();
  std::size_t i = start;

  auto end_record = [&]() {
    record.push_back(std::move(field));
    field.clear();
    // A line with nothing on it is skipped; a line holding only "" is a record with one empty field.
    if (field_started) {
      records.push_back(std::move(record));
      record_lines.push_back(record_line);
    }
    record.clear();
    field_started = false;
  };

  while (i < n) {
    char c = input[i];
    if (!field_started) record_line = line;
    if (c == '"' && field.empty() && (i == start || !field_started || input[i - 1] == ',')) {
      // A quoted field: runs to the closing quote, "" is one quote, line breaks are part of the value.
      field_started = true;
      std::int64_t open_line = line;
      ++i;
      bool closed = false;
      while (i < n) {
        char q = input[i];
        if (q == '"') {
          if (i + 1 < n && input[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        if (q == '\n' || (q == '\r' && (i + 1 == n || input[i + 1] != '\n'))) ++line;
        field += q;
        ++i;
      }
      if (!closed)
        fail_at(label, open_line, "unterminated quoted field (a '\"' opens a field that no '\"' closes)");
      if (i < n && input[i] != ',' && input[i] != '\n' && input[i] != '\r')
        fail_at(label, line,
                "text after the closing quote of a field; a quote inside a quoted field is written \"\"");
      continue;
    }
    if (c == ',') {
      field_started = true;
      record.push_back(std::move(field));
      field.clear();
      ++i;
      continue;
    }
    if (c == '\r' && i + 1 < n && input[i + 1] == '\n') {
      end_record();
      ++line;
      i += 2;
      continue;
    }
    if (c == '\n') {
      end_record();
      ++line;
      ++i;
      continue;
    }
    if (c == '\r') {  // a bare CR ends a line too (classic Mac files), as in Python's csv module and pandas
      end_record();
      ++line;
      ++i;
      continue;
    }
    field_started = true;
    field += c;
    ++i;
  }
  if (field_started || !record.empty()) end_record();

  if (records.empty()) fail(ErrorCode::corrupt_data, label + ": empty CSV file; the first line must name the columns");
  table.header = std::move(records[0]);
  std::unordered_set<std::string> seen;
  for (const auto& name : table.header) {
    if (name.empty())
      fail_at(label, record_lines[0], "the header has an empty column name; give every column a name");
    if (!seen.insert(name).second)
      fail_at(label, record_lines[0], "the header names the column '" + name + "' twice; column names must be unique");
  }
  for (std::size_t r = 1; r < records.size(); ++r) {
    if (records[r].size() != table.header.size())
      fail_at(label, record_lines[r],
              "the row has " + std::to_string(records[r].size()) + " field(s) but the header has " +
                  std::to_string(table.header.size()) +
                  "; quote fields that contain commas or line breaks (\"a, b\")");
    table.rows.push_back(std::move(records[r]));
    table.row_lines.push_back(record_lines[r]);
  }
  return table;
}

CsvTable read_csv(const std::string& path) { return parse_csv(read_file(path), path); }

}  // namespace vlm
