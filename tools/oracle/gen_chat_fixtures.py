#!/usr/bin/env python3
"""Writes tests/fixtures/chat/: what Python jinja2 + transformers produce for chat templates.

Developers only (the C++ tests read the committed JSON, CI never runs Python). Run from the repo root:

    tools/oracle/.venv/bin/python tools/oracle/gen_chat_fixtures.py

Outputs
  tests/fixtures/chat/interpreter_cases.json  template + context -> rendered string (or the error Python raised),
      rendered with transformers' own compiled environment (_compile_jinja_template: ImmutableSandboxedEnvironment,
      trim_blocks, lstrip_blocks, loopcontrols, {% generation %}, tojson/raise_exception/strftime_now/namespace).
  tests/fixtures/chat/conversation_cases.json real templates (Qwen3, Qwen2-VL, Qwen2.5-VL, llava-hf, vlmrt's
      BLIP-2 default) over conversations, rendered by tokenizer.apply_chat_template /
      processor.apply_chat_template (tokenize=False), with the special tokens of the tokenizer.
  tests/fixtures/chat/templates/*.jinja       the template texts (see README.md for where each came from).
  tests/fixtures/chat/checkpoints/*/          tiny folders to test where load_chat_template finds a template.
"""
import json
import os
import shutil
import sys

import jinja2
import transformers
from transformers.utils.chat_template_utils import _compile_jinja_template, render_jinja_template

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "chat")
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data", "tokenizers")

# ---------------------------------------------------------------------------------------------------- templates

# Qwen2-VL-7B-Instruct / Qwen2-VL-2B-Instruct chat_template.json (see README.md for sources).
QWEN2_VL = "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"  # noqa: E501
# transformers tests/models/qwen2_5_vl/test_processor_qwen2_5_vl.py prepare_processor_dict (same text).
QWEN2_5_VL = QWEN2_VL
# llava-hf/llava-1.5-7b-hf chat_template.json, as in transformers tests/models/llava/test_processor_llava.py.
LLAVA = "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"  # noqa: E501
# vlmrt's own BLIP-2 default (core/chat/chat_template.cpp kBlip2Template); rendered here by Python jinja2 too.
BLIP2 = (
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}{%- set text = message['content'] -%}"
    "{%- else -%}{%- set text = message['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') "
    "| join(' ') -%}{%- endif -%}"
    "{%- if not loop.first -%}{{ ' ' }}{%- endif -%}"
    "{%- if message['role'] == 'user' -%}{{ 'Question: ' + text }}"
    "{%- elif message['role'] == 'assistant' -%}{{ 'Answer: ' + text }}"
    "{%- else -%}{{ text }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{%- if messages -%}{{ ' ' }}{%- endif -%}{{ 'Answer:' }}{%- endif -%}"
)


def render(template, context):
    """Render like transformers does; returns {"expected": str} or {"error": message}."""
    try:
        compiled = _compile_jinja_template(template)
    except Exception as e:  # noqa: BLE001 - TemplateSyntaxError, or SyntaxError from jinja2's code generator
        return {"error": "syntax", "python_error": f"{type(e).__name__}: {e}"}
    try:
        return {"expected": compiled.render(**context)}
    except Exception as e:  # noqa: BLE001 - every Python error is a case the C++ side must reject
        return {"error": "render", "python_error": f"{type(e).__name__}: {e}"}


# ---------------------------------------------------------------------------------------------------- interpreter

MSGS = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi <b>&</b> 'there'"},
    {"role": "assistant", "content": "Hello!\n  How can I help?  "},
    {"role": "user", "content": "Unicode: héllo wörld ✓ 中文 😀"},
]

INTERPRETER = [
    # output of values: Python str()/repr()
    ("literals", "{{ 1 }}|{{ -3 }}|{{ 1.5 }}|{{ 2.0 }}|{{ 1e16 }}|{{ 1.5e-7 }}|{{ 0.1 + 0.2 }}|{{ true }}|{{ none }}|{{ 'a' 'b' }}", {}),
    ("containers", "{{ [1, 'a', none, true, 1.5, {'k': 'v'}] }}|{{ (1, 2) }}|{{ ('x',) }}|{{ () }}|{{ {'a': [1, (2, 3)]} }}", {}),
    ("repr_quotes", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'tab\\tnl\\n', 'é✓😀', '\\x01'] }}", {}),
    ("context_values", "{{ n }}|{{ f }}|{{ s }}|{{ l }}|{{ d }}|{{ b }}|{{ z }}", {"n": 42, "f": 3.25, "s": "str", "l": [1, "two", None], "d": {"z": 1, "a": [True, False]}, "b": False, "z": None}),
    ("string_escapes", "{{ 'a\\nb\\tc\\\\d\\'e\\\"f\\x41\\u00e9\\U0001F600\\101\\q' }}", {}),
    ("undefined_print", "[{{ missing }}][{{ missing|default('dflt') }}][{{ d.nokey }}][{{ l[10] }}][{{ d['nokey'] }}]", {"d": {"a": 1}, "l": [1]}),
    # operators
    ("arithmetic", "{{ 7 + 3 }} {{ 7 - 10 }} {{ 7 * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 10 / 4 }}", {}),
    ("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 2 * 3 ~ 4 }} {{ 1 + 1 == 2 }} {{ not 1 == 2 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}", {}),
    ("bool_int", "{{ true + 1 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ 0 == false }} {{ 'a' == 'a' }} {{ [1,2] == [1,2] }} {{ (1,2) == [1,2] }} {{ none == none }}", {}),
    ("and_or_values", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }} {{ none or none }} {{ [] or [1] }} {{ not [] }}", {}),
    ("concat_tilde", "{{ 'a' ~ 1 ~ none ~ true ~ 1.5 ~ missing ~ [1] }}", {}),
    ("string_ops", "{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ 3 * 'x' }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 'b' in 'abc' }} {{ 2 in [1,2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }}", {}),
    ("comparisons", "{{ 'abc' < 'abd' }} {{ 'B' < 'a' }} {{ 'é' > 'z' }} {{ [1,2] < [1,3] }} {{ 2 >= 2.0 }} {{ 1 != 1 }}", {}),
    ("inline_if", "{{ 'yes' if x else 'no' }}|{{ 'yes' if y else 'no' }}|{{ 'only' if y }}|{{ 1 if x else 2 if y else 3 }}", {"x": 0, "y": 1}),
    # subscripts and slicing
    ("subscripts", "{{ l[0] }} {{ l[-1] }} {{ l.1 }} {{ d['a'] }} {{ d.a }} {{ s[1] }} {{ s[-1] }} {{ t[0][1] }}", {"l": [10, 20, 30], "d": {"a": "A"}, "s": "héllo", "t": [[1, 2]]}),
    ("slicing", "{{ l[1:] }} {{ l[:2] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }} {{ l[1:-1] }} {{ s[::-1] }} {{ s[1:3] }} {{ l[5:] }} {{ l[3:1] }} {{ l[:-10] }}", {"l": [1, 2, 3, 4, 5], "s": "héllo✓"}),
    ("dict_method_vs_key", "{{ d.items() | list }} {{ d['items'] }} {{ d.get('a') }} {{ d.get('x', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list }}", {"d": {"a": 1, "items": "key-items"}}),
    # statements
    ("for_loop_vars", "{% for x in [10, 20, 30] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", {}),
    ("for_prev_next_cycle", "{% for x in 'abc' %}[{{ loop.previtem }}{{ x }}{{ loop.nextitem }}{{ loop.cycle('o', 'e') }}]{% endfor %}", {}),
    ("for_else_and_filter", "{% for x in [1, 2, 3, 4] if x is even %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% else %}empty{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}", {}),
    ("for_unpack_dict", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}{% for k, v in d|items %}{{ v }}{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("for_break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("for_scoping", "{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = x + i %}{{ x }}|{% endfor %}{{ x }}{{ i }}", {}),
    ("nested_loops", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }};{% endfor %}", {}),
    ("if_elif_else", "{% for v in [0, 1, 2, 3] %}{% if v == 0 %}zero{% elif v == 1 %}one{% elif v == 2 %}two{% else %}many{% endif %},{% endfor %}", {}),
    ("set_in_if_leaks", "{% if true %}{% set y = 5 %}{% endif %}{{ y }}", {}),
    ("set_tuple_and_block", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}{% set blk %}in {{ a }} block{% endset %}[{{ blk }}]{% set up | upper %}shout{% endset %}{{ up }}", {}),
    ("namespace", "{% set ns = namespace(count=0, found=false) %}{% for m in msgs %}{% if m.role == 'user' %}{% set ns.count = ns.count + 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }} {{ ns }}", {"msgs": MSGS}),
    ("namespace_from_dict", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns.c is defined }}", {}),
    ("macro", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C', punct='.') }} {{ greet() }}", {}),
    ("macro_varargs_kwargs_closure", "{% set outer = 'O' %}{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{{ outer }}{{ later }}{% endmacro %}{% set later = 'L' %}{{ m(1, 2, 3, k='v') }}", {}),
    ("macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}", {}),
    ("with_block", "{% set a = 1 %}{% with a = 2, b = 3 %}{{ a }}{{ b }}{% endwith %}{{ a }}{{ b is defined }}", {}),
    ("filter_block", "{% filter upper %}hello {{ 'world' }}{% endfilter %}|{% filter trim | title %}  a-b c  {% endfilter %}", {}),
    ("raw_block", "{% raw %}{{ not rendered }} {% if %}{% endraw %}|done", {}),
    ("comments", "a{# comment #}b{#- stripped -#}  c {# multi\nline #}d", {}),
    ("generation_block", "{% for m in msgs %}{% if m.role == 'assistant' %}{% generation %}[{{ m.content }}]{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}", {"msgs": MSGS}),
    ("print_statement", "{% print 'x' ~ 1 %}", {}),
    # whitespace control, trim_blocks, lstrip_blocks
    ("ws_trim_lstrip", "  {% if true %}\n  x\n  {% endif %}\ny\n", {}),
    ("ws_minus", "a  \n  {{- 'b' -}}  \n  c\n{%- if true -%}\n  d  \n{%- endif -%}\n  e", {}),
    ("ws_plus", "  {%+ if true %}a{% endif +%}\nb\n    {%+ if true +%}\nc{% endif %}", {}),
    ("ws_var_no_trim", "{{ 'a' }}\n  {{ 'b' }}\n{% if true %}  c{% endif %}\n  {# c #}\nd", {}),
    ("ws_crlf_and_trailing", "line1\r\n{% if true %}\r\nline2\r\n{% endif %}\r\n", {}),
    ("ws_indented_blocks", "{%- for m in msgs %}\n    {%- if m.role == 'user' %}\n        {{- '<u>' + m.content }}\n    {%- else %}\n        {{- '<o>' }}\n    {%- endif %}\n{%- endfor %}\n", {"msgs": MSGS}),
    ("ws_two_trailing_newlines", "x\n\n", {}),
    # filters
    ("filters_text", "{{ '  pad  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'aBc'|upper }}|{{ 'aBc'|lower }}|{{ 'hello wORLD'|capitalize }}|{{ 'hello-world foo(bar)'|title }}|{{ 'abc'|replace('b', 'X') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 'héllo'|length }}|{{ 'abc'|reverse }}", {}),
    ("filters_seq", "{{ [3, 1, 2]|sort }}|{{ ['b', 'A', 'c']|sort }}|{{ ['b', 'A', 'c']|sort(case_sensitive=true) }}|{{ [1, 2, 3]|sort(reverse=true) }}|{{ [1, 2]|join(', ') }}|{{ [1, 2, 3]|first }}|{{ [1, 2, 3]|last }}|{{ [1, 1, 2, 'a', 'A']|unique|list }}|{{ [4, 2, 8]|min }}|{{ [4, 2, 8]|max }}|{{ [1, 2, 3]|sum }}|{{ [1, 2]|reverse|list }}|{{ 'ab'|list }}", {}),
    ("filters_dicts", "{{ d|items|list }}|{{ d|dictsort }}|{{ d|dictsort(by='value', reverse=true) }}|{{ d|length }}|{{ d|list }}|{{ users|map(attribute='name')|join('/') }}|{{ users|sort(attribute='age')|map(attribute='name')|list }}|{{ users|selectattr('admin')|map(attribute='name')|list }}|{{ users|rejectattr('admin')|map(attribute='name')|list }}|{{ users|selectattr('age', 'gt', 30)|list|length }}|{{ users|map(attribute='missing', default='?')|list }}|{{ users|sum(attribute='age') }}", {"d": {"b": 2, "a": 3, "C": 1}, "users": [{"name": "ann", "age": 31, "admin": True}, {"name": "bob", "age": 25, "admin": False}, {"name": "cy", "age": 40}]}),
    ("filters_select_map", "{{ [1, 2, 3, 4]|select('odd')|list }}|{{ [1, 2, 3, 4]|reject('odd')|list }}|{{ [0, 1, '', 'a']|select|list }}|{{ ['a', 'b']|map('upper')|list }}|{{ [' a ', ' b']|map('trim')|join }}|{{ content|selectattr('type', 'equalto', 'text')|map(attribute='text')|join(' ') }}", {"content": [{"type": "text", "text": "one"}, {"type": "image"}, {"type": "text", "text": "two"}]}),
    ("filters_numbers", "{{ '42'|int }}|{{ '4.7'|int }}|{{ 'x'|int }}|{{ 'x'|int(7) }}|{{ 3.9|int }}|{{ '0x1A'|int(base=16) }}|{{ '2.5'|float }}|{{ 3|float }}|{{ 'nan?'|float }}|{{ -5|abs }}|{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.675|round(2) }}|{{ 2.1|round(method='ceil') }}|{{ 2.9|round(0, 'floor') }}|{{ 42|string ~ '!' }}", {}),
    ("filters_default", "{{ missing|default('a') }}|{{ ''|default('b') }}|{{ ''|default('c', true) }}|{{ none|default('d') }}|{{ missing|d('e') }}|{{ 0|default('f', boolean=true) }}", {}),
    ("filters_misc", "{{ '<a href=\"x\">&\\'</a>'|e }}|{{ '<b>'|safe }}|{{ 'one two  three'|wordcount }}|{{ 'x'|center(7) }}|{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, first=true) }}|{{ 'a\\n\\nb'|indent('> ', blank=true) }}|{{ d|attr('a') }}|{{ 'abc'|count }}", {"d": {"a": "attr-a"}}),
    ("tojson", "{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ 'é\"<>&\\n'|tojson }}|{{ 'é😀'|tojson(ensure_ascii=true) }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ {'a': [1, 2]}|tojson(separators=(',', ':')) }}|{{ [1.0, 1e20, 0.5, none, true]|tojson }}|{{ (1, 2)|tojson }}|{{ {}|tojson }}|{{ []|tojson(indent=4) }}|{{ {'a': {}}|tojson(indent='\\t') }}", {"d": {"name": "f", "params": {"type": "object", "required": ["x"]}, "n": 1.5}}),
    ("tojson_tools", "{% for tool in tools %}{{ tool|tojson }}\n{% endfor %}", {"tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather — in °C", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}),
    # tests
    ("tests_types", "{{ x is defined }}{{ missing is defined }}{{ missing is undefined }}{{ none is none }}{{ 'a' is string }}{{ 1 is string }}{{ {} is mapping }}{{ [] is mapping }}{{ [] is iterable }}{{ 'a' is iterable }}{{ 1 is iterable }}{{ [] is sequence }}{{ 1 is number }}{{ 1.5 is number }}{{ 1 is integer }}{{ 1.0 is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ 1 is boolean }}{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 0 is false }}", {"x": 1}),
    ("tests_values", "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ 'a' is eq 'a' }}{{ 1 is equalto 2 }}{{ 2 is gt 1 }}{{ 2 is lt 1 }}{{ 2 is ge 2 }}{{ 2 is le 1 }}{{ 1 is ne 2 }}{{ 2 is in [1, 2] }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 'aBc' is lower }}{{ none is sameas none }}{{ true is sameas true }}{{ 'x' is not string }}{{ range is callable }}{{ 'upper' is filter }}{{ 'odd' is test }}{{ 'nope' is filter }}", {}),
    # Python string methods
    ("str_methods", "{{ 'a,b,,c'.split(',') }}|{{ ' a  b \\n c '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ '  x  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '\\n\\nhi\\n'.lstrip('\\n') }}|{{ 'hi\\n\\n'.rstrip() }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.startswith(('x', 'a')) }}|{{ 'abc'.endswith('bc') }}|{{ 'Hello World'.upper() }}|{{ 'Hello World'.lower() }}|{{ 'hello world'.title() }}|{{ 'hELLO'.capitalize() }}", {}),
    ("str_methods_2", "{{ 'a-b-c'.replace('-', '+') }}|{{ 'a-b-c'.replace('-', '', 1) }}|{{ 'héllo'.find('l') }}|{{ 'hello'.find('z') }}|{{ 'hello'.rfind('l') }}|{{ 'banana'.count('an') }}|{{ ', '.join(['a', 'b']) }}|{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ '123'.isdigit() }}|{{ 'abc'.isalpha() }}|{{ ' '.isspace() }}|{{ 'Abc'.islower() }}|{{ 'prefix-x'.removeprefix('prefix-') }}|{{ 'x.txt'.removesuffix('.txt') }}|{{ '{} and {}'.format('a', 1) }}|{{ '{name}!'.format(name='N') }}", {}),
    ("think_split", "{% set c = m.split('</think>')[-1].lstrip('\\n') %}{% set r = m.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}[{{ r }}][{{ c }}]", {"m": "<think>\nreasoning here\n</think>\n\nthe answer"}),
    # globals
    ("globals", "{{ range(3)|list }}{{ range(1, 10, 3)|list }}{{ range(5, 0, -2)|list }}{{ dict(a=1, b=[2]) }}{{ dict(x='y')|tojson }}{{ strftime_now('%Y') is string }}", {}),
    ("bos_eos_tokens", "{{ bos_token }}[INST] {{ messages[0]['content'] }} [/INST]{{ eos_token }}", {"bos_token": "<s>", "eos_token": "</s>", "messages": MSGS[1:2]}),
    ("messages_reverse_scan", "{% set ns = namespace(last_user=-1) %}{% for m in messages[::-1] %}{% set idx = (messages|length - 1) - loop.index0 %}{% if ns.last_user == -1 and m.role == 'user' %}{% set ns.last_user = idx %}{% endif %}{% endfor %}{{ ns.last_user }}", {"messages": MSGS}),
    ("unicode_content", "{% for m in messages %}<{{ m.role|upper }}>{{ m.content|trim }}|{{ m.content|length }}{% endfor %}", {"messages": MSGS}),
    # errors Python raises at render time (C++ must throw too)
    ("error_raise_exception", "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with user') }}{% endif %}ok", {"messages": MSGS}),
    ("error_undefined_attr", "{{ missing.attr }}", {}),
    ("error_str_plus_int", "{{ 'a' + 1 }}", {}),
    ("error_undefined_plus", "{{ missing + 1 }}", {}),
    ("error_call_undefined", "{{ nothing() }}", {}),
    ("error_tojson_undefined", "{{ missing|tojson }}", {}),
    ("error_namespace_underscore", "{% set ns = namespace() %}{% set ns._x = 1 %}", {}),
    ("error_list_append", "{% set l = [] %}{{ l.append(1) }}", {}),
    ("error_division_by_zero", "{{ 1 / 0 }}", {}),
    ("error_compare_types", "{{ 1 < 'a' }}", {}),
    ("error_unpack", "{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("error_macro_too_many_args", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}", {}),
    ("error_in_none", "{{ 'a' in none }}", {}),
    ("error_range_too_big", "{{ range(100001)|length }}", {}),
    # syntax errors (compile time)
    ("syntax_unclosed_block", "{% if true %}never closed", {}),
    ("syntax_unknown_filter", "{{ 'x'|no_such_filter }}", {}),
    ("syntax_unknown_tag", "{% frobnicate %}", {}),
    ("syntax_bad_expression", "{{ 1 + }}", {}),
    ("syntax_unclosed_variable", "{{ 'x' ", {}),
    ("syntax_unknown_test", "{{ 1 is frob }}", {}),
]

# More edge cases: lexer corners, Python printing, and the idioms of popular Hub templates (written for these tests).
INTERPRETER += [
    ("ws_text_before_tag_same_line", "abc  {% if true %}x{% endif %}  \n\t {% if true %}y{% endif %}\n", {}),
    ("ws_comment_lstrip", "a\n  {# c #}\nb\n\t{#- c2 #}  c", {}),
    ("ws_unicode_space_lstrip", "a\n\u3000\u00a0 {% if true %}x{% endif %}", {}),
    ("ws_left_only_minus", "a \n {{- 'b' }} \n c {{ 'd' -}} \n e", {}),
    ("ws_raw_minus", "a  {%- raw -%}  {{ x }}  {%- endraw -%}  b", {}),
    ("ws_block_then_var_lines", "{% for i in [1, 2] %}\n{{ i }}\n{% endfor %}\nend", {}),
    ("ws_nested_indent", "<ul>\n  {% for i in [1, 2] %}\n    <li>{{ i }}</li>\n  {% endfor %}\n</ul>", {}),
    ("ws_if_else_inline", "[{% if x %} yes {% else %} no {% endif %}]", {"x": False}),
    ("lexer_braces_in_data", "a { b } {{ '{' }} {{ '}}' }} {{ {'a': {'b': 1}} }} {{ {'k': '%}'}['k'] }} {", {}),
    ("lexer_numbers", "{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1.5e3 }} {{ 2E-2 }} {{ 10.0 }}", {}),
    ("lexer_strings_adjacent_and_escapes", "{{ 'a' \"b\" 'c' }}|{{ '\\\\' }}|{{ 'it\\'s' }}|{{ \"say \\\"x\\\"\" }}|{{ 'multi\nline' }}", {}),
    ("lexer_trailing_commas", "{{ [1, 2,] }} {{ {'a': 1,} }} {{ (1, 2,) }} {{ dict(a=1,) }}", {}),
    ("float_printing", "{{ 1e-5 }} {{ 123456789.123 }} {{ 1e22 }} {{ -0.0 }} {{ 100.0 }} {{ 1 / 3 }} {{ 6 / 3 }} {{ 2 ** 62 }} {{ 0.000123 }} {{ 1e15 }} {{ 1.23456789e-10 }}", {}),
    ("none_and_bool_filters", "{{ none|string }} {{ none|lower }} {{ [1, none]|join('-') }} {{ true|tojson }} {{ none|tojson }} {{ true|string|upper }}", {}),
    ("views_and_range_print", "{{ d.items() }} {{ d.keys() }} {{ d.values() }} {{ range(3) }} {{ range(1, 9, 2) }} {{ d.items()|list }}", {"d": {"a": 1, "b": [2]}}),
    ("split_whitespace_maxsplit", "{{ ' a b  c '.split(None, 1) }} {{ 'a b  '.split(None, 1) }} {{ ' a b  c '.rsplit(None, 1) }} {{ 'a b c'.split(maxsplit=1) }} {{ '\u00a0x\u2003y '.split() }} {{ ''.split() }} {{ ''.split(',') }}", {}),
    ("precedence_more", "{{ 'abc' ~ 5 * 2 }} {{ 1 if true else 2 ~ 'x' }} {{ not x is defined }} {{ x is not none and x > 1 }} {{ -x|abs }} {{ [1, 2, 3]|length > 2 and 'long' or 'short' }} {{ 2 * 3 ** 2 }} {{ (-2) ** 2 }}", {"x": 3}),
    ("call_then_filter", "{{ 'a,b,c'.split(',')|length }} {{ 'A B'.lower().split()|join('_') }} {{ ('x' ~ 'y').upper() }} {{ [3, 1]|sort|first }}", {}),
    ("macro_default_uses_param", "{% macro f(a, b=a * 2) %}{{ a }}-{{ b }}{% endmacro %}{{ f(2) }} {{ f(2, 5) }} {{ f(b=1, a=3) }}", {}),
    ("macro_in_loop_and_caller_scope", "{% macro show(m) %}[{{ m.role }}:{{ m.content|trim }}]{% endmacro %}{% for m in msgs %}{{ show(m) }}{% endfor %}", {"msgs": MSGS}),
    ("set_block_in_loop", "{% for i in [1, 2] %}{% set s %}<{{ i }}>{% endset %}{{ s }}{% endfor %}{{ s is defined }}", {}),
    ("loop_changed_and_last_items", "{% for k, v in d.items() %}{{ k }}{% if not loop.last %}, {% endif %}{% endfor %}|{% for x in [1, 1, 2] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}", {"d": {"x": 1, "y": 2, "z": 3}}),
    ("nested_content_access", "{{ messages[0]['content'][0]['text'] }} {{ messages[0].content[1].type }} {{ messages[0].content|length }} {{ messages[-1].content[0].text|default('none') }}", {"messages": [{"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "image"}]}]}),
    ("sort_dicts_by_attr", "{{ items|sort(attribute='n', reverse=true)|map(attribute='n')|join(',') }} {{ items|sort(attribute='s')|map(attribute='s')|join(',') }} {{ items|map(attribute='n')|max }} {{ items|max(attribute='n') }}", {"items": [{"n": 2, "s": "b"}, {"n": 3, "s": "A"}, {"n": 1, "s": "c"}]}),
    ("unicode_methods", "{{ 'ÉCOLE straße'|lower }} {{ 'éa'|upper }} {{ 'ñandú'|title }} {{ 'ｆｕｌｌ'|length }} {{ '中文'[1] }} {{ '😀x'[::-1] }} {{ 'é'|center(5) }}|", {}),
    ("llama3_style_template", "{{- bos_token }}\n{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content']|trim %}\n    {%- set messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = \"\" %}\n{%- endif %}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n{{- system_message }}\n{{- \"<|eot_id|>\" }}\n{%- for message in messages %}\n    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n", {"bos_token": "<|begin_of_text|>", "date_string": "26 Jul 2024", "messages": MSGS, "add_generation_prompt": True}),
    ("mistral_style_alternation", "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}", {"bos_token": "<s>", "eos_token": "</s>", "messages": MSGS[1:3]}),
    ("mistral_style_alternation_error", "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% endfor %}", {"messages": MSGS}),
    ("gemma_style_role_map", "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}", {"messages": MSGS[1:], "add_generation_prompt": True}),
    ("phi3_style_loop_last", "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}", {"messages": MSGS, "add_generation_prompt": False, "eos_token": "<|endoftext|>"}),
    ("tools_json_indent", "{%- if tools %}{%- for t in tools %}{{ t | tojson(indent=4) }}\n\n{% endfor %}{%- endif %}{{ tools|length }}", {"tools": [{"name": "f", "parameters": {"a": {"type": "integer", "enum": [1, 2]}}}]}),
    ("error_sort_mixed", "{{ [1, 'a']|sort }}", {}),
    ("error_int_plus_none", "{{ 1 + none }}", {}),
    ("error_iterate_int", "{% for x in 5 %}{% endfor %}", {}),
    ("error_unhashable_key", "{{ {[1]: 2} }}", {}),
    ("error_split_empty_sep", "{{ 'a'.split('') }}", {}),
    ("error_assign_to_non_namespace", "{% set d = {} %}{% set d.x = 1 %}", {}),
    ("syntax_empty_print", "{{ }}", {}),
    ("syntax_endif_without_if", "{% endif %}", {}),
    ("syntax_else_after_else", "{% if x %}{% else %}{% else %}{% endif %}", {}),
    ("syntax_break_outside_loop", "{% break %}", {}),
    ("syntax_unclosed_comment", "{# never closed", {}),
    ("syntax_unbalanced_paren", "{{ (1 + 2 }}", {}),
    ("syntax_chained_is", "{{ 1 is odd is even }}", {}),
]

# Found by tools/oracle/fuzz_chat_templates.py (differences fixed in vlmrt, kept as regressions).
INTERPRETER += [
    ("fuzz_generators_are_lazy_and_true", "{{ not [0]|select('odd') }} {{ (5|map('string')) is defined }} {{ [1, 2]|select('odd') is iterable }} {{ [1]|map('string') is sequence }} {% set g = [1, 2, 3]|select('odd') %}{{ g|list }}{{ g|list }} {{ (none|select('odd'))|list }} {{ (0|map('string'))|list }} {{ 'x'|items is defined }}", {}),
    ("fuzz_generator_first", "{{ [1, 2, 3]|select('odd')|first }} {{ []|select('odd')|first is defined }} {{ [4, 5]|map('string')|join('+') }} {{ [3, 1, 1]|unique|sort }}", {}),
    ("fuzz_tests_odd_even_float", "{{ 0.1 is odd }} {{ 3.0 is odd }} {{ 4.0 is even }} {{ 1.5 is divisibleby 0.5 }} {{ true is odd }}", {}),
    ("fuzz_lower_upper_tests_on_values", "{{ {'a': 1} is lower }} {{ [1] is lower }} {{ 'ABC1' is upper }} {{ 1 is lower }} {{ none is lower }} {{ true is upper }}", {}),
    ("fuzz_undefined_is_sequence", "{{ missing is sequence }} {{ missing is not sequence }} {{ missing is iterable }}", {}),
    ("fuzz_round_int", "{{ 3|round }} {{ true|round }} {{ 3|round(2) }} {{ 3|round(method='floor') }} {{ 2.5|round(0, 'ceil') }}", {}),
    ("fuzz_attr_filter_on_dict", "{{ d|attr('a') }}|{{ d|attr('items') is callable }}|{{ 'x'|attr('upper') is callable }}", {"d": {"a": 1}}),
    ("fuzz_error_undefined_float", "{{ missing|float }}", {}),
    ("fuzz_error_undefined_int", "{{ missing|int }}", {}),
    ("fuzz_error_indent_non_string", "{{ none|indent(2) }}", {}),
    ("fuzz_error_generator_length", "{{ [1]|select|length }}", {}),
    ("fuzz_error_generator_last", "{{ [1]|select|last }}", {}),
    ("fuzz_error_deferred_on_use", "{% set g = 5|select('odd') %}ok{{ g|list }}", {}),
    ("fuzz_error_in_lazy_items", "{{ 'x' in 5|items }}", {}),
    ("fuzz_error_generator_arithmetic", "{{ missing|items * 10 }}", {}),
    ("full_case_mappings", "{{ 'straße'|upper }} {{ 'ﬁne ﬂow'.upper() }} {{ 'ΟΔΟΣ ΣΑΣ Σ'|lower }} {{ 'İx'.lower() }} {{ 'ΣΑΣ.'.lower() }} {{ 'maße'.title() }} {{ 'ǰ'.upper() }}", {}),
    ("fuzz_error_test_extra_argument", "{{ 2 is mapping not in {'k': 'v'} }}", {}),
    ("fuzz_error_tojson_dict_view", "{{ d.values()|tojson }}", {"d": {"a": 1}}),
    ("fuzz_error_tojson_range", "{{ range(2)|tojson }}", {}),
    ("fuzz_percent_without_specifiers", "{{ 'abc' % [1, 2] }} {{ 'abc' % {'k': 1} }} {{ 'abc' % () }}", {}),
    ("fuzz_error_percent_number", "{{ 'abc' % 5 }}", {}),
    ("fuzz_error_compare_generators", "{{ [1]|select <= [1]|select }}", {}),
    ("fuzz_reverse_undefined_is_true", "{{ (missing|reverse) is defined }} {{ not missing|reverse }} {{ missing|reverse|list }}", {}),
]

# Constructs real Jinja2 supports that vlmrt deliberately rejects with a clear error (not a Python comparison).
UNSUPPORTED = [
    ("unsupported_include", "{% include 'other.jinja' %}", "include"),
    ("unsupported_call_block", "{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}x{% endcall %}", "call"),
    ("unsupported_groupby", "{{ [1]|groupby('x') }}", "groupby"),
    ("unsupported_recursive_loop", "{% for x in [1] recursive %}{{ x }}{% endfor %}", "recursive"),
    ("unsupported_extends", "{% extends 'base' %}", "extends"),
]


def interpreter_cases():
    cases = []
    for name, template, context in INTERPRETER:
        case = {"name": name, "template": template, "context": context}
        case.update(render(template, context))
        cases.append(case)
    for name, template, construct in UNSUPPORTED:
        cases.append({"name": name, "template": template, "context": {}, "error": "unsupported", "construct": construct})
    return cases


# ---------------------------------------------------------------------------------------------------- conversations

TEXT_CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "What is 2+2?"}],
    "system_and_turns": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke about cats.\nKeep it short."},
    ],
    "assistant_last": [
        {"role": "user", "content": "Name a color."},
        {"role": "assistant", "content": "Blue."},
    ],
    "unicode": [
        {"role": "user", "content": "Traduis: « café crème » — 中文 😀"},
        {"role": "assistant", "content": "  spaced answer  "},
        {"role": "user", "content": "Merci"},
    ],
    "thinking_history": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nsimple sum\n</think>\n\n4"},
        {"role": "user", "content": "3+3?"},
        {"role": "assistant", "content": "6", "reasoning_content": "another sum"},
    ],
    "tool_call_roundtrip": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "{\"temp\": 21}"},
        {"role": "assistant", "content": "It is 21 degrees."},
    ],
}

VISION_CONVERSATIONS = {
    "image_question": [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is shown in this image?"}]},
    ],
    "system_two_images_turns": [
        {"role": "system", "content": [{"type": "text", "text": "You describe images."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Compare the two images."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "The first is brighter."}]},
        {"role": "user", "content": [{"type": "text", "text": "And the colors?"}]},
    ],
    "text_then_image": [
        {"role": "user", "content": [{"type": "text", "text": "Look at this:"}, {"type": "image"}, {"type": "text", "text": "Describe it."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat on a mat."}]},
    ],
    "multi_turn_images": [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Caption?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A dog."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "And this one — ünïcode?"}]},
    ],
}
# Qwen2-VL also accepts plain string content.
QWEN_VL_EXTRA = {
    "string_content": [
        {"role": "user", "content": "No image, plain text."},
        {"role": "assistant", "content": "OK."},
        {"role": "user", "content": "Again."},
    ],
}


def load_tokenizer(name):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(os.path.join(SHARED, name))


def make_processor(kind, tokenizer, template):
    """A processor object with just its tokenizer and chat template.

    The full constructors also want image/video processors (the Qwen video processor needs torchvision, which
    the oracle venv does not have); apply_chat_template(tokenize=False) only uses the tokenizer and template.
    """
    if kind in ("qwen2_vl", "qwen2_5_vl"):
        from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor
        cls = Qwen2VLProcessor if kind == "qwen2_vl" else Qwen2_5_VLProcessor
    elif kind == "llava":
        from transformers import LlavaProcessor as cls
    else:
        raise ValueError(kind)
    processor = object.__new__(cls)
    processor.chat_template = template
    processor.tokenizer = tokenizer
    return processor


def char_to_byte_spans(text, spans):
    return [[len(text[:a].encode()), len(text[:b].encode())] for a, b in spans]


def conversation_cases():
    cases = []
    qwen3 = load_tokenizer("qwen3")
    llama2 = load_tokenizer("llama2")
    special = {
        "qwen3": {k: v for k, v in qwen3.special_tokens_map.items()},
        "llama2": {k: v for k, v in llama2.special_tokens_map.items()},
    }

    def add(template_name, conv_name, messages, agp, rendered, tokens_name, extra=None, spans=None, via=""):
        case = {
            "name": f"{template_name}/{conv_name}/agp={int(agp)}" + ("/" + "+".join(k if k == "tools" else f"{k}={v}" for k, v in extra.items()) if extra else ""),
            "template": template_name,
            "messages": messages,
            "add_generation_prompt": agp,
            "special_tokens": special[tokens_name],
            "extra_context": extra or {},
            "expected": rendered,
            "rendered_by": via,
        }
        if spans is not None:
            case["generation_spans"] = char_to_byte_spans(rendered, spans)
        cases.append(case)

    # Qwen3: the real tokenizer's template through tokenizer.apply_chat_template.
    for conv_name, messages in TEXT_CONVERSATIONS.items():
        for agp in (False, True):
            rendered = qwen3.apply_chat_template(messages, tokenize=False, add_generation_prompt=agp)
            add("qwen3", conv_name, messages, agp, rendered, "qwen3", via="tokenizer.apply_chat_template")
        rendered = qwen3.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
        add("qwen3", conv_name, messages, True, rendered, "qwen3", {"enable_thinking": False}, via="tokenizer.apply_chat_template")

    # Qwen3 with tools (transformers' tools= argument; vlmrt takes them in extra_context).
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city, in °C",
                                                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                               "required": ["city"]}}}]
    for conv_name in ("tool_call_roundtrip", "system_and_turns"):
        messages = TEXT_CONVERSATIONS[conv_name]
        rendered = qwen3.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
        add("qwen3", conv_name, messages, True, rendered, "qwen3", {"tools": tools}, via="tokenizer.apply_chat_template(tools=...)")

    # Vision templates through processor.apply_chat_template.
    for kind, template, tok_name in (("qwen2_vl", QWEN2_VL, "qwen3"), ("qwen2_5_vl", QWEN2_5_VL, "qwen3"), ("llava", LLAVA, "llama2")):
        tokenizer = qwen3 if tok_name == "qwen3" else llama2
        processor = make_processor(kind, tokenizer, template)
        convs = dict(VISION_CONVERSATIONS)
        if kind != "llava":
            convs.update(QWEN_VL_EXTRA)
        for conv_name, messages in convs.items():
            for agp in (False, True):
                rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=agp)
                spans = None
                if kind == "llava":
                    _, indices = render_jinja_template(conversations=[messages], chat_template=template,
                                                       return_assistant_tokens_mask=True, add_generation_prompt=agp,
                                                       **tokenizer.special_tokens_map)
                    spans = indices[0]
                add(kind, conv_name, messages, agp, rendered, tok_name, spans=spans, via="processor.apply_chat_template")
            if kind != "llava":
                rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, add_vision_id=True)
                add(kind, conv_name, messages, True, rendered, tok_name, {"add_vision_id": True}, via="processor.apply_chat_template")

    # vlmrt's BLIP-2 default, rendered by transformers' renderer (there is no BLIP-2 template to compare with).
    blip_convs = {"image_question": VISION_CONVERSATIONS["image_question"], "multi_turn_images": VISION_CONVERSATIONS["multi_turn_images"],
                  "string_content": QWEN_VL_EXTRA["string_content"], "system_two_images_turns": VISION_CONVERSATIONS["system_two_images_turns"]}
    for conv_name, messages in blip_convs.items():
        for agp in (False, True):
            rendered, _ = render_jinja_template(conversations=[messages], chat_template=BLIP2, add_generation_prompt=agp,
                                                **llama2.special_tokens_map)
            add("blip2", conv_name, messages, agp, rendered[0], "llama2", via="render_jinja_template")
    return cases


# ---------------------------------------------------------------------------------------------------- checkpoints

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_json(path, obj):
    write(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def checkpoints():
    """Folders for load_chat_template, each with the template transformers itself picks (recorded in expected.json)."""
    base = os.path.join(OUT, "checkpoints")
    shutil.rmtree(base, ignore_errors=True)
    qwen3_config = json.load(open(os.path.join(SHARED, "qwen3", "tokenizer_config.json"), encoding="utf-8"))
    llama_config = json.load(open(os.path.join(SHARED, "llama2", "tokenizer_config.json"), encoding="utf-8"))

    def tok_config(src, template=None):
        cfg = {k: v for k, v in src.items() if k != "added_tokens_decoder"}
        if template is None:
            cfg.pop("chat_template", None)
        else:
            cfg["chat_template"] = template
        return cfg

    write_json(os.path.join(base, "qwen3_tokenizer_config", "tokenizer_config.json"), tok_config(qwen3_config, qwen3_config["chat_template"]))
    # Both files: the tokenizer prefers chat_template.jinja over tokenizer_config.json.
    write_json(os.path.join(base, "jinja_over_config", "tokenizer_config.json"), tok_config(llama_config, "FROM CONFIG {{ messages|length }}"))
    write(os.path.join(base, "jinja_over_config", "chat_template.jinja"), "FROM JINJA {{ bos_token }}{{ messages|length }}\n")
    # Legacy processor file chat_template.json wins over chat_template.jinja for a processor.
    write_json(os.path.join(base, "legacy_json", "chat_template.json"), {"chat_template": LLAVA})
    write(os.path.join(base, "legacy_json", "chat_template.jinja"), "FROM JINJA")
    write_json(os.path.join(base, "legacy_json", "tokenizer_config.json"), tok_config(llama_config))
    # Named templates in tokenizer_config.json.
    write_json(os.path.join(base, "named_templates", "tokenizer_config.json"),
               tok_config(llama_config, [{"name": "default", "template": "DEFAULT {{ messages|length }}"},
                                         {"name": "tool_use", "template": "TOOLS {{ tools|length }}"}]))
    # chat_template.jinja plus additional_chat_templates/*.jinja: named templates.
    write_json(os.path.join(base, "additional_templates", "tokenizer_config.json"), tok_config(llama_config, "IGNORED CONFIG"))
    write(os.path.join(base, "additional_templates", "chat_template.jinja"), "MAIN {{ messages|length }}")
    write(os.path.join(base, "additional_templates", "additional_chat_templates", "tool_use.jinja"), "TOOL {{ tools|length }}")
    # No template: family defaults by model_type.
    for model_type in ("qwen2_vl", "qwen2_5_vl", "llava", "blip-2"):
        folder = os.path.join(base, "default_" + model_type.replace("-", "_"))
        write_json(os.path.join(folder, "config.json"), {"model_type": model_type})
        write_json(os.path.join(folder, "tokenizer_config.json"), tok_config(qwen3_config if "qwen" in model_type else llama_config))
    # Nothing at all: llama2's real tokenizer_config.json has no chat_template.
    write_json(os.path.join(base, "llama2_no_template", "tokenizer_config.json"), tok_config(llama_config))

    # What transformers loads from these folders (AutoTokenizer needs the vocabulary, so copy it in temporarily).
    from transformers import AutoTokenizer
    expected = {}
    tmp = os.path.join(OUT, "_tmp_tok")
    for folder, vocab in (("qwen3_tokenizer_config", "qwen3"), ("jinja_over_config", "llama2"), ("named_templates", "llama2"),
                          ("llama2_no_template", "llama2"), ("additional_templates", "llama2")):
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(os.path.join(base, folder), tmp)
        shutil.copy(os.path.join(SHARED, vocab, "tokenizer.json"), tmp)
        tok = AutoTokenizer.from_pretrained(tmp)
        expected[folder] = {"chat_template": tok.chat_template, "special_tokens": tok.special_tokens_map}
    shutil.rmtree(tmp, ignore_errors=True)
    # The processor side: save a real LlavaProcessor, drop the legacy_json folder's template files in, load it back.
    from transformers import CLIPImageProcessor, LlavaProcessor
    shutil.rmtree(tmp, ignore_errors=True)
    LlavaProcessor(image_processor=CLIPImageProcessor(), tokenizer=load_tokenizer("llama2"), patch_size=14,
                   vision_feature_select_strategy="default").save_pretrained(tmp)
    for name in ("chat_template.json", "chat_template.jinja"):
        shutil.copy(os.path.join(base, "legacy_json", name), tmp)
    loaded = LlavaProcessor.from_pretrained(tmp).chat_template
    shutil.rmtree(tmp, ignore_errors=True)
    expected["legacy_json"] = {"chat_template": loaded,
                               "note": "LlavaProcessor.from_pretrained: chat_template.json is read before chat_template.jinja"}
    for model_type, template in (("qwen2_vl", QWEN2_VL), ("qwen2_5_vl", QWEN2_5_VL), ("llava", LLAVA), ("blip_2", BLIP2)):
        expected["default_" + model_type] = {"chat_template": template, "note": "family default"}
    write_json(os.path.join(base, "expected.json"), expected)


def main():
    os.makedirs(OUT, exist_ok=True)
    templates = os.path.join(OUT, "templates")
    os.makedirs(templates, exist_ok=True)
    qwen3_config = json.load(open(os.path.join(SHARED, "qwen3", "tokenizer_config.json"), encoding="utf-8"))
    for name, text in (("qwen3", qwen3_config["chat_template"]), ("qwen2_vl", QWEN2_VL), ("qwen2_5_vl", QWEN2_5_VL),
                       ("llava", LLAVA), ("blip2", BLIP2)):
        # Stored verbatim; the C++ test reads them byte for byte.
        with open(os.path.join(templates, name + ".jinja"), "w", encoding="utf-8", newline="") as f:
            f.write(text)
    write_json(os.path.join(OUT, "interpreter_cases.json"), {
        "generator": "tools/oracle/gen_chat_fixtures.py",
        "versions": {"transformers": transformers.__version__, "jinja2": jinja2.__version__},
        "cases": interpreter_cases()})
    write_json(os.path.join(OUT, "conversation_cases.json"), {
        "generator": "tools/oracle/gen_chat_fixtures.py",
        "versions": {"transformers": transformers.__version__, "jinja2": jinja2.__version__},
        "cases": conversation_cases()})
    checkpoints()
    print("wrote", OUT)


if __name__ == "__main__":
    sys.exit(main())
