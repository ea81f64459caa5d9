#!/usr/bin/env bash
# Build llama.cpp's own command-line tools — the ones qtk's users compare it with — from the exact source
# node-llama-cpp bundles, once, into a cache outside the repository. ≈12–20 min on 2 cores.
#   usage: bench/build-llama-anchors.sh [PROJECT_DIR]   (default: the current directory)
#   prints the bin folder: llama-server, llama-perplexity, llama-imatrix, llama-quantize
set -eu
project=${1:-$PWD}
bundle="$project/node_modules/node-llama-cpp/llama/gitRelease.bundle"
[ -f "$bundle" ] || { echo "no $bundle: run npm ci in the project first" >&2; exit 1; }
cache=${QTK_ANCHORS:-${XDG_CACHE_HOME:-$HOME/.cache}/qtk-anchors}
src="$cache/llama.cpp"; build="$cache/build"
command -v cmake >/dev/null || { apt-get update >/dev/null && apt-get install -y cmake >/dev/null; }
[ -d "$src" ] || git clone -q "$bundle" "$src"
if [ ! -x "$build/bin/llama-server" ] || [ ! -x "$build/bin/llama-perplexity" ] || [ ! -x "$build/bin/llama-imatrix" ] || [ ! -x "$build/bin/llama-quantize" ]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >/dev/null
  cmake --build "$build" -j"$(nproc)" --target llama-server llama-perplexity llama-imatrix llama-quantize >/dev/null
fi
echo "$build/bin"
