// CSV files as the pipeline reads them (training and evaluation data): RFC 4180 with the variations that
// spreadsheet exports and pandas.to_csv produce. Quoted fields with "" escapes and line breaks inside quotes,
// LF or CRLF line ends, an optional UTF-8 byte-order mark, blank lines skipped (as pandas' skip_blank_lines).
// The first record is the header. Malformed files are rejected, never guessed at: invalid UTF-8, a record
// with a different number of fields than the header, an unterminated quote, text after a closing quote, an
// empty or duplicate column name -> vlm::Error(corrupt_data) naming the file and the line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vlm {

struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // every row has header.size() fields
  std::vector<std::int64_t> row_lines;         // 1-based line where each row starts

  // Index of a column; throws vlm::Error(invalid_argument) naming the file, the column and the columns the
  // file has.
  std::size_t column(const std::string& name) const;
  std::optional<std::size_t> find_column(const std::string& name) const;
};

CsvTable read_csv(const std::string& path);
// Parses CSV text already in memory; `label` names it in error messages (and becomes CsvTable::path).
CsvTable parse_csv(const std::string& text, const std::string& label);

}  // namespace vlm
