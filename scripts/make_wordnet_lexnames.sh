#!/usr/bin/env bash
# Builds a WordNet folder that nltk's WordNetCorpusReader can open from Debian's wordnet-base.
#
# Debian ships the WordNet 3.0 database in /usr/share/wordnet but not the `lexnames` file that nltk reads first.
# Its content (45 lexicographer file names with their numbers) is documented in the lexnames(5WN) man page of the
# same package; this script extracts it from there. The output folder gets a copy of every Debian file (about 40 MB) plus the
# generated lexnames, so nothing under /usr/share is modified.
#
# Usage: scripts/make_wordnet_lexnames.sh OUT_DIR [WORDNET_DIR] [LEXNAMES_MAN_PAGE]
#   OUT_DIR            folder to create. For nltk use <nltk_data>/corpora/wordnet, e.g.
#                      build-metrics/nltk_data/corpora/wordnet, and put <nltk_data> on nltk.data.path (nltk also
#                      loads the "wordnet" corpus by that name while opening any WordNet folder).
#                      vlmrt itself reads /usr/share/wordnet directly and does not need this folder.
#   WORDNET_DIR        Debian's WordNet database (default /usr/share/wordnet)
#   LEXNAMES_MAN_PAGE  the lexnames(5WN) man page (default /usr/share/man/man5/lexnames.5WN.gz)
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
out_dir=$1
wordnet_dir=${2:-/usr/share/wordnet}
man_page=${3:-/usr/share/man/man5/lexnames.5WN.gz}

for f in index.noun data.noun noun.exc index.sense; do
  if [ ! -f "$wordnet_dir/$f" ]; then
    echo "error: $wordnet_dir/$f is missing; install the Debian packages wordnet-base and wordnet-sense-index" >&2
    exit 3
  fi
done
if [ ! -f "$man_page" ]; then
  echo "error: $man_page is missing (it comes with wordnet-base; a Docker image may exclude /usr/share/man:" \
       "check /etc/dpkg/dpkg.cfg.d/ for a path-exclude line)" >&2
  exit 3
fi

mkdir -p "$out_dir"
for f in "$wordnet_dir"/*; do
  name=$(basename "$f")
  [ "$name" = lexnames ] && continue
  # A copy, not a symlink: nltk refuses files that resolve outside the corpus root.
  cp -fL "$f" "$out_dir/$name"
done

# Table rows look like "00<TAB>adj.all<TAB>all adjective clusters"; the third lexnames field is the syntactic
# category (1 noun, 2 verb, 3 adjective, 4 adverb), taken from the name's prefix.
tmp="$out_dir/lexnames.tmp.$$"
if [[ "$man_page" == *.gz ]]; then reader=(zcat); else reader=(cat); fi
"${reader[@]}" "$man_page" | awk -F'\t' '
  /^[0-9][0-9]\t[a-z]+\.[A-Za-z]+/ {
    name = $2; gsub(/[ \t]+$/, "", name)
    split(name, parts, ".")
    cat = (parts[1] == "noun") ? 1 : (parts[1] == "verb") ? 2 : (parts[1] == "adj") ? 3 : (parts[1] == "adv") ? 4 : 0
    if (cat == 0) { print "unknown lexicographer file prefix: " name > "/dev/stderr"; exit 1 }
    printf "%s\t%s\t%d\n", $1, name, cat
  }' > "$tmp"
lines=$(wc -l < "$tmp")
if [ "$lines" -ne 45 ]; then
  rm -f "$tmp"
  echo "error: expected 45 lexicographer files in $man_page, found $lines" >&2
  exit 4
fi
mv -f "$tmp" "$out_dir/lexnames"
echo "WordNet folder ready: $out_dir (lexnames: $lines entries)"
