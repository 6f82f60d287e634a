#!/bin/sh
# Shell wrappers of the vlmrt command-line programs, for use from other scripts. Installed three times, as
#   vlm-generate  -> vlm_generate             (answer a prompt about images)
#   vlm-evaluate  -> vlm_evaluate             (evaluate a model on a CSV: predictions + metrics)
#   vlm-finetune  -> vlm_finetune_and_eval    (LoRA fine-tuning, then evaluation, from an experiment YAML)
# and dispatched on the name it is called by. Every argument goes to the program unchanged, except that the
# wrapper gives --json a meaning for every program and in every outcome:
#   --json, success:  the program's own JSON when it has a --json option, else {"ok": true, "exit_code": 0,
#                     "program": ..., "stdout": ...}
#   --json, failure:  {"ok": false, "exit_code": N, "program": ..., "error": <the program's stderr>} on stdout
# Exit codes are the program's: 0 success, 2 bad usage, 3 bad input, 4 runtime failure; the wrapper adds
# 127 when the program cannot be found. The program is looked up in $VLMRT_BIN_DIR, then next to this script,
# then on $PATH.
set -u

name=$(basename "$0")
case "$name" in
  vlm-generate) program=vlm_generate ;;
  vlm-evaluate) program=vlm_evaluate ;;
  vlm-finetune) program=vlm_finetune_and_eval ;;
  *)
    echo "vlm-wrapper: call me as vlm-generate, vlm-evaluate or vlm-finetune (not $name)" >&2
    exit 2
    ;;
esac

# JSON string body of stdin: backslash, quote, tab and CR escaped, lines joined with \n.
json_escape() {
  awk 'BEGIN { ORS = "" } { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "\\r");
                            if (NR > 1) print "\\n"; print }'
}

json=0
help=0
for arg in "$@"; do
  case "$arg" in
    --json) json=1 ;;
    --help | -h) help=1 ;;
  esac
done

self_dir=$(cd "$(dirname "$0")" && pwd)
cli=""
for dir in "${VLMRT_BIN_DIR:-}" "$self_dir"; do
  if [ -n "$dir" ] && [ -x "$dir/$program" ]; then
    cli="$dir/$program"
    break
  fi
done
if [ -z "$cli" ]; then
  cli=$(command -v "$program" 2>/dev/null || true)
fi
if [ -z "$cli" ]; then
  message="$name: cannot find the program $program (looked in \$VLMRT_BIN_DIR, $self_dir and \$PATH); install vlmrt or set VLMRT_BIN_DIR"
  if [ "$json" = 1 ]; then
    printf '{"ok": false, "exit_code": 127, "program": "%s", "error": "%s"}\n' "$program" "$(printf '%s' "$message" | json_escape)"
  fi
  echo "$message" >&2
  exit 127
fi

if [ "$help" = 1 ]; then
  echo "$name: wrapper of $program for scripts (exit codes 0/2/3/4 as the program, 127 program not found;"
  echo "--json gives a JSON object on stdout on success and on failure). The program's help follows."
  echo
  exec "$cli" --help
fi

if [ "$json" = 0 ]; then
  exec "$cli" "$@"
fi

# --json: does the program itself understand it?
native_json=0
if "$cli" --help 2>/dev/null | grep -q -- '--json'; then
  native_json=1
fi
if [ "$native_json" = 0 ]; then
  # Drop --json from the arguments (the program would refuse it).
  for arg in "$@"; do
    shift
    [ "$arg" = "--json" ] || set -- "$@" "$arg"
  done
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vlm-wrapper.XXXXXX") || exit 4
trap 'rm -rf "$tmp"' EXIT
"$cli" "$@" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 0 ]; then
  if [ "$native_json" = 1 ]; then
    cat "$tmp/out"
  else
    printf '{"ok": true, "exit_code": 0, "program": "%s", "stdout": "%s"}\n' "$program" "$(json_escape <"$tmp/out")"
  fi
  cat "$tmp/err" >&2
else
  printf '{"ok": false, "exit_code": %d, "program": "%s", "error": "%s"}\n' "$rc" "$program" "$(json_escape <"$tmp/err")"
  cat "$tmp/err" >&2
fi
exit "$rc"
