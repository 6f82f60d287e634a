"""Writes tests/fixtures/pipeline_csv/: CSV files in the shapes data tools produce (Python's csv.writer with minimal
and full quoting, CRLF and bare-CR line ends, a UTF-8 byte-order mark, quoted line breaks and quotes, blank lines)
and what Python's csv module reads from them (csv.reader over the text decoded as utf-8-sig with newline='', blank
lines dropped as pandas' skip_blank_lines does), with the line each record starts on (from reader.line_num).

Run: tools/oracle/.venv/bin/python tools/oracle/gen_csv_fixtures.py
"""
import csv
import io
import json
import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "pipeline_csv"

TRICKY = [["url", "query", "annotation"],
          ["images/a,b.png", "say \"hi\" twice", "line one\nline two"],
          ["https://example.com/x.png?a=1&b=2", "  leading and trailing  ", ""],
          ["c.png", "Zürich ☃ — 東京", "a\r\nb"],
          ["d.png", "'single' and \"double\"", "ends with a quote\""]]


def written(rows, **kwargs):
    buffer = io.StringIO(newline="")
    csv.writer(buffer, **kwargs).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def cases():
    yield "writer_minimal_crlf", written(TRICKY)  # csv.writer's default: QUOTE_MINIMAL, \r\n
    yield "writer_all_lf", written(TRICKY, quoting=csv.QUOTE_ALL, lineterminator="\n")
    yield "bom_blank_lines", "\ufeffurl,query\n\nimg1.png,first\n\n\nimg2.png,\"second\nwith a break\"\n\n".encode("utf-8")
    yield "bare_cr", b"url,query\rimg1.png,one\rimg2.png,\"two\rlines\"\r"
    yield "no_final_newline", b"url,query,annotation\nx.png,\"\",\ny.png,q,r"
    yield "one_column", b"url\n\"\"\nx.png\n"
    yield "literal_quotes", b"url,query\nx.png,5\" screen\ny.png,a \"b\" c\n"


def read(data):
    text = data.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    records, starts = [], []
    previous = 0
    for row in reader:
        if row:
            records.append(row)
            starts.append(previous + 1)
        previous = reader.line_num
    return records, starts


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {"python": sys.version.split()[0], "cases": []}
    for name, data in cases():
        (OUT / f"{name}.csv").write_bytes(data)
        records, starts = read(data)
        expected["cases"].append({"file": f"{name}.csv", "header": records[0], "rows": records[1:],
                                  "row_lines": starts[1:]})
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
