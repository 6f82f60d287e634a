#include "pipeline/csv.h"

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;
using vlm::test::TempDir;

TEST_CASE("csv: header, rows and the line each row starts on") {
  CsvTable t = parse_csv("url,query,annotation\na.png,what?,a cat\nb.png,how many,two\n", "data.csv");
  CHECK(t.path == "data.csv");
  REQUIRE(t.header == std::vector<std::string>{"url", "query", "annotation"});
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0] == std::vector<std::string>{"a.png", "what?", "a cat"});
  CHECK(t.rows[1] == std::vector<std::string>{"b.png", "how many", "two"});
  CHECK(t.row_lines == std::vector<std::int64_t>{2, 3});
  CHECK(t.column("query") == 1);
  CHECK(t.find_column("annotation") == std::optional<std::size_t>(2));
  CHECK_FALSE(t.find_column("response").has_value());
}

TEST_CASE("csv: RFC 4180 quoting, escaped quotes, line breaks inside quotes, CRLF, BOM") {
  std::string text =
      "\xEF\xBB\xBFurl,query,annotation\r\n"
      "\"a,1.png\",\"say \"\"hi\"\"\",\"line one\r\nline two\"\r\n"
      "b.png,,\"\"\r\n"
      "c.png,x \"y\" z,plain\r\n";
  CsvTable t = parse_csv(text, "q.csv");
  REQUIRE(t.header == std::vector<std::string>{"url", "query", "annotation"});
  REQUIRE(t.rows.size() == 3);
  CHECK(t.rows[0][0] == "a,1.png");
  CHECK(t.rows[0][1] == "say \"hi\"");
  CHECK(t.rows[0][2] == "line one\r\nline two");  // line breaks inside quotes are kept as written
  CHECK(t.rows[1] == std::vector<std::string>{"b.png", "", ""});
  CHECK(t.rows[2][1] == "x \"y\" z");  // a quote inside an unquoted field is literal (Python's csv does the same)
  CHECK(t.row_lines == std::vector<std::int64_t>{2, 4, 5});
}

TEST_CASE("csv: a bare CR ends a line, as in Python's csv module") {
  CsvTable t = parse_csv("a,b\r1,\"x\ry\"\r\r2,3", "cr.csv");
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0] == std::vector<std::string>{"1", "x\ry"});
  CHECK(t.rows[1] == std::vector<std::string>{"2", "3"});
  CHECK(t.row_lines == std::vector<std::int64_t>{2, 5});
  expect_error([] { parse_csv("a,b\r1,2\r3\r", "cr.csv"); }, ErrorCode::corrupt_data, {"cr.csv:3"});
}

TEST_CASE("csv: blank lines are skipped, the last line may lack its line break, UTF-8 text is kept") {
  CsvTable t = parse_csv("a,b\n\n1,2\n\n\n\"Zürich ☃\",x", "u.csv");
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0] == std::vector<std::string>{"1", "2"});
  CHECK(t.rows[1] == std::vector<std::string>{"Zürich ☃", "x"});
  CHECK(t.row_lines == std::vector<std::int64_t>{3, 6});
}

TEST_CASE("csv: a single-column file keeps rows holding an empty quoted value") {
  CsvTable t = parse_csv("url\nx.png\n\"\"\ny.png\n", "one.csv");
  REQUIRE(t.rows.size() == 3);
  CHECK(t.rows[1] == std::vector<std::string>{""});
  CHECK(t.row_lines == std::vector<std::int64_t>{2, 3, 4});
}

TEST_CASE("csv: header only gives no rows") {
  CsvTable t = parse_csv("url,query\n", "h.csv");
  CHECK(t.header.size() == 2);
  CHECK(t.rows.empty());
}

TEST_CASE("csv: malformed files are errors naming the file and the line") {
  expect_error([] { parse_csv("a,b\n1,2\n3\n", "r.csv"); }, ErrorCode::corrupt_data,
               {"r.csv:3", "1 field(s)", "header has 2"});
  expect_error([] { parse_csv("a,b\n1,2,3\n", "r.csv"); }, ErrorCode::corrupt_data, {"r.csv:2", "3 field(s)"});
  expect_error([] { parse_csv("a,b\n1,\"open\nstill open\n", "q.csv"); }, ErrorCode::corrupt_data,
               {"q.csv:2", "unterminated"});
  expect_error([] { parse_csv("a,b\n\"x\"y,2\n", "t.csv"); }, ErrorCode::corrupt_data,
               {"t.csv:2", "after the closing quote"});
  expect_error([] { parse_csv("a,b\n1,\xff\n", "bad.csv"); }, ErrorCode::corrupt_data, {"bad.csv:2", "UTF-8"});
  // An overlong encoding and a UTF-16 surrogate are not UTF-8 either.
  expect_error([] { parse_csv("a\n\xC0\xAF\n", "o.csv"); }, ErrorCode::corrupt_data, {"o.csv:2", "UTF-8"});
  expect_error([] { parse_csv("a\nok\n\xED\xA0\x80\n", "s.csv"); }, ErrorCode::corrupt_data, {"s.csv:3", "UTF-8"});
  expect_error([] { parse_csv("a\n\xE2\x98", "cut.csv"); }, ErrorCode::corrupt_data, {"cut.csv:2", "UTF-8"});
  expect_error([] { parse_csv("", "e.csv"); }, ErrorCode::corrupt_data, {"e.csv", "empty"});
  expect_error([] { parse_csv("\n\n", "e.csv"); }, ErrorCode::corrupt_data, {"e.csv", "empty"});
  expect_error([] { parse_csv("a,a\n1,2\n", "d.csv"); }, ErrorCode::corrupt_data, {"d.csv:1", "'a' twice"});
  expect_error([] { parse_csv("a,,b\n1,2,3\n", "n.csv"); }, ErrorCode::corrupt_data, {"n.csv:1", "empty column name"});
}

TEST_CASE("csv: the line of an error counts the line breaks inside earlier quoted fields") {
  expect_error([] { parse_csv("a,b\n\"x\ny\nz\",1\nonly\n", "m.csv"); }, ErrorCode::corrupt_data, {"m.csv:5"});
}

TEST_CASE("csv: a missing column names the file, the column and the columns it has") {
  CsvTable t = parse_csv("url,query\nx,y\n", "val.csv");
  expect_error([&] { t.column("annotation"); }, ErrorCode::invalid_argument,
               {"val.csv", "'annotation'", "'url', 'query'"});
}

TEST_CASE("csv: read_csv reads a file and names a missing one") {
  TempDir dir;
  write_file_atomic(dir.file("d.csv"), "url,query\nimg.png,hello\n");
  CsvTable t = read_csv(dir.file("d.csv"));
  CHECK(t.path == dir.file("d.csv"));
  REQUIRE(t.rows.size() == 1);
  CHECK(t.rows[0][1] == "hello");
  expect_error([&] { read_csv(dir.file("missing.csv")); }, ErrorCode::not_found, {"missing.csv"});
}

TEST_CASE("csv: equal to Python's csv module on files written by data tools") {
  // tests/fixtures/pipeline_csv (tools/oracle/gen_csv_fixtures.py)
  const auto expected = nlohmann::json::parse(vlm::test::read_bytes(vlm::test::fixture("pipeline_csv/expected.json")));
  REQUIRE(expected["cases"].size() >= 7);
  for (const auto& c : expected["cases"]) {
    const std::string file = c["file"];
    CAPTURE(file);
    CsvTable t = read_csv(vlm::test::fixture("pipeline_csv/" + file));
    CHECK(t.header == c["header"].get<std::vector<std::string>>());
    CHECK(t.rows == c["rows"].get<std::vector<std::vector<std::string>>>());
    CHECK(t.row_lines == c["row_lines"].get<std::vector<std::int64_t>>());
  }
}
