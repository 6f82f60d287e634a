#!/usr/bin/env bash
# Installs every system package vlmrt needs to build and test, from Debian 12's archive. Idempotent: packages that
# are already installed are skipped, and nothing is downloaded when everything is present.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config ccache
  # libtorch, and OpenBLAS as its BLAS (the reference BLAS runs fp32 matmul ~30x slower); the OpenMP build, see below
  libtorch-dev libopenblas0-openmp
  # checkpoints, configs, images, text
  nlohmann-json3-dev libyaml-cpp-dev libpng-dev libjpeg62-turbo-dev
  libsentencepiece-dev libpcre2-dev libutf8proc-dev zlib1g-dev
  # command-line programs and images by URL
  libcli11-dev libcurl4-openssl-dev
  # METEOR's WordNet data
  wordnet-base wordnet-sense-index
  # tests and ABI checks
  doctest-dev abigail-tools
  # spm_train, used by tools/oracle/gen_tokenizer_fixtures.py (tokenizer fixtures)
  sentencepiece
  # the Rust and Go bindings' tests (bindings_c_examples/rust, bindings_c_examples/go; rustc 1.63, go 1.19)
  rustc cargo golang-go
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  echo "Installing: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "All system packages are present."
fi

# libtorch runs its own kernels on an OpenMP thread pool. OpenBLAS's OpenMP build runs on that same pool; its pthread
# build (Debian's preferred alternative when both are installed) starts a second set of threads that spin against
# the first for the cores: training steps measured ~25% slower on 2 cores. Point libblas, liblapack and libopenblas at
# the OpenMP build.
multiarch=$(gcc -dumpmachine)
for lib in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
  name="$lib-$multiarch"
  want="/usr/lib/$multiarch/openblas-openmp/$lib"
  current=$(update-alternatives --query "$name" 2>/dev/null | awk '/^Value:/ {print $2}')
  if [ "$current" != "$want" ]; then
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
    echo "Selecting $want for $name (was: ${current:-none})"
    "${sudo_cmd[@]}" update-alternatives --set "$name" "$want"
  fi
done
