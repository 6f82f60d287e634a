#!/usr/bin/env python3
"""Differential fuzzing of vlmrt's chat template interpreter against Python jinja2 (transformers' environment).

Generates random templates from a grammar of the constructs chat templates use (expressions with operators,
filters, tests and string/dict methods; for/if/set/macro/namespace statements; every whitespace-control variant)
with random conversation contexts, renders them with transformers' compiled environment and with the native
probe (bench_chat --probe), and reports every case where the outputs differ or only one side fails. Failing cases
are written to a JSON file; worth turning into fixtures in gen_chat_fixtures.py once understood.

Usage (repository root):
  tools/oracle/.venv/bin/python tools/oracle/fuzz_chat_templates.py --native build-chat/bench/chat/bench_chat \
      [--cases 3000] [--seed 1] [--out /tmp/chat_fuzz_failures.json]
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile

from transformers.utils.chat_template_utils import _compile_jinja_template

STRINGS = ["'a'", "'Hello World'", "' pad '", "'x,y,,z'", "'<think>\\nr\\n</think>\\n\\nans'", "'é✓'", "''", "'A-b c'"]
NUMBERS = ["0", "1", "2", "-3", "1.5", "2.0", "10", "0.1"]
NAMES = ["messages", "m", "s", "n", "f", "l", "d", "flag", "none_value", "missing"]
FILTERS = ["trim", "upper", "lower", "length", "first", "last", "list", "string", "tojson", "title", "capitalize",
           "reverse", "int", "float", "abs", "sort", "unique", "join(', ')", "default('dflt')", "replace('a', 'b')",
           "items", "select('odd')", "map('string')", "selectattr('role', 'equalto', 'user')", "tojson(indent=2)",
           "dictsort", "sum", "min", "max", "round", "indent(2)", "wordcount", "center(9)", "e"]
TESTS = ["defined", "undefined", "none", "string", "mapping", "iterable", "sequence", "number", "integer", "float",
         "boolean", "true", "false", "odd", "even", "divisibleby 2", "eq 1", "in [1, 2]", "lower", "upper"]
METHODS = ["strip()", "lstrip('\\n')", "rstrip()", "split(',')", "split()", "upper()", "lower()", "title()",
           "startswith('a')", "endswith('d')", "replace('l', 'L')", "find('o')", "count('l')", "splitlines()",
           "items()", "keys()", "values()", "get('role')", "get('x', 1)"]
OPS = ["+", "-", "*", "/", "//", "%", "~", "==", "!=", "<", ">", "<=", ">=", "and", "or", "in", "not in"]


def expr(rng, depth=0):
    r = rng.random()
    if depth > 2 or r < 0.3:
        return rng.choice(STRINGS + NUMBERS + NAMES + ["true", "false", "none", "[1, 2, 3]", "{'k': 'v', 'role': 'user'}",
                                                       "m.role", "m['content']", "messages[0]", "messages[-1].content",
                                                       "l[1:]", "l[::-1]", "d.a", "loop_var"])
    if r < 0.5:
        return f"{expr(rng, depth + 1)} {rng.choice(OPS)} {expr(rng, depth + 1)}"
    if r < 0.65:
        return f"{expr(rng, depth + 1)} | {rng.choice(FILTERS)}"
    if r < 0.75:
        return f"{expr(rng, depth + 1)} is {rng.choice(['', 'not '])}{rng.choice(TESTS)}"
    if r < 0.85:
        return f"({expr(rng, depth + 1)}).{rng.choice(METHODS)}"
    if r < 0.92:
        return f"{expr(rng, depth + 1)} if {expr(rng, depth + 1)} else {expr(rng, depth + 1)}"
    return f"not {expr(rng, depth + 1)}"


def ws(rng):
    return rng.choice(["", "", "-", "+"])


def text(rng):
    return rng.choice(["", "x", " ", "\n", "  \n  ", "\t", "a\n", "\n\n", " b ", "\n    "])


def block(rng, depth=0):
    r = rng.random()
    if depth > 2 or r < 0.3:
        return f"{text(rng)}{{{{{ws(rng)} {expr(rng)} {ws(rng)}}}}}{text(rng)}"
    if r < 0.5:
        return (f"{text(rng)}{{%{ws(rng)} for loop_var in {rng.choice(['messages', 'l', 'd', 's', 'range(3)'])} %}}"
                f"{body(rng, depth + 1)}{{{{ loop.index }}}}{{%{ws(rng)} endfor {ws(rng)}%}}{text(rng)}")
    if r < 0.7:
        return (f"{text(rng)}{{%{ws(rng)} if {expr(rng)} {ws(rng)}%}}{body(rng, depth + 1)}"
                f"{{%{ws(rng)} elif {expr(rng)} %}}{body(rng, depth + 1)}{{%{ws(rng)} else {ws(rng)}%}}{body(rng, depth + 1)}"
                f"{{%{ws(rng)} endif {ws(rng)}%}}{text(rng)}")
    if r < 0.8:
        return f"{{%{ws(rng)} set v = {expr(rng)} {ws(rng)}%}}{text(rng)}{{{{ v }}}}"
    if r < 0.9:
        return (f"{{% set ns = namespace(c=0) %}}{{% for x in messages %}}{{% set ns.c = ns.c + 1 %}}{{% endfor %}}"
                f"{text(rng)}{{{{ ns.c }}}}")
    return f"{{#{ws(rng)} comment {ws(rng)}#}}{text(rng)}"


def body(rng, depth):
    return "".join(block(rng, depth) for _ in range(rng.randint(1, 2)))


def context(rng):
    messages = [{"role": rng.choice(["system", "user", "assistant"]), "content": rng.choice(["hi", " spaced ", "a,b", "é✓", "<think>\nr\n</think>\n\nans"])}
                for _ in range(rng.randint(0, 3))]
    return {"messages": messages, "m": messages[0] if messages else {"role": "user", "content": "c"},
            "s": rng.choice(["hello", "", "A b"]), "n": rng.choice([0, 1, 7, -2]), "f": rng.choice([0.5, 2.0, -1.25]),
            "l": [1, 2, 3], "d": {"a": 1, "b": "two"}, "flag": rng.random() < 0.5, "none_value": None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--native", required=True)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "chat_fuzz_failures.json"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    cases = []
    for _ in range(args.cases):
        template = body(rng, 0)
        ctx = context(rng)
        try:
            expected = {"ok": True, "out": _compile_jinja_template(template).render(**ctx)}
        except Exception as e:  # noqa: BLE001
            expected = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        cases.append({"template": template, "context": ctx, "python": expected})
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump({"cases": cases}, f, ensure_ascii=False)
        path = f.name
    try:
        run = subprocess.run([args.native, "--probe", path], capture_output=True, text=True)
    finally:
        os.unlink(path)
    native = [json.loads(line) for line in run.stdout.splitlines()]
    if len(native) != len(cases):
        sys.exit(f"native probe returned {len(native)} results for {len(cases)} cases: {run.stderr[-2000:]}")
    failures = []
    for case, got in zip(cases, native):
        py = case["python"]
        same = (py["ok"] == got["ok"]) and (not py["ok"] or py["out"] == got["out"])
        # Python prints generators/iterators with their memory address; vlmrt refuses to print them (by design).
        if not same and py["ok"] and re.search(r" at 0x[0-9a-f]+>", py["out"]) and "printing a" in got.get("error", ""):
            continue
        if not same:
            failures.append({**case, "native": got})
    ok_cases = sum(1 for c in cases if c["python"]["ok"])
    print(f"cases: {len(cases)} ({ok_cases} render in Python, {len(cases) - ok_cases} raise); differences: {len(failures)}")
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(failures, f, ensure_ascii=False, indent=1)
    for fcase in failures[:5]:
        print("---", repr(fcase["template"])[:300])
        print("   python:", repr(fcase["python"])[:300])
        print("   native:", repr(fcase["native"])[:300])
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
