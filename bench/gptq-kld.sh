#!/usr/bin/env bash
# GPTQ vs importance-matrix vs plain rounding at equal size: mean KLD against the f16 model on held-out text,
# by `qtk eval kld` and by llama.cpp's llama-perplexity (--kl-divergence) on the same files. imatrix and GPTQ
# see the same calibration tokens (the first 8 windows of 512 tokens of calib.txt); calibration text = this
# repository's core/engine/convert sources, held-out text = its quantize/serve/lora sources and READMEs (no overlap).
# Fixture (FIXTURE=…): random — the qwen3_5 test fixture, 256 wide (every matmul takes k-quants), 4 layers,
# white activations; structured — 512 wide, 4 layers, generated with --structured (low-rank embeddings and
# outlier channels amplified by the norms, so matmul inputs are correlated as in trained models). Both
# use the real Qwen3 tokenizer and vocabulary.
# Usage: npm run build && [FIXTURE=structured] bash bench/gptq-kld.sh [workdir]   (prints a markdown table)
#        LLAMA_BIN=<folder of llama-perplexity> (default ~/.cache/qtk-anchors/build/bin)
#        METHODS="rtn imatrix imatrix-out gptq" (imatrix-out: an imatrix that also covers output.weight), SEED=7
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${1:-$(mktemp -d)}
QTK="node $ROOT/packages/cli/dist/main.js"
T=${THREADS:-2}
LB=${LLAMA_BIN:-$HOME/.cache/qtk-anchors/build/bin}
PRESETS=${PRESETS:-Q4_K_M Q3_K_M IQ4_XS}
METHODS=${METHODS:-rtn imatrix gptq}
FIXTURE=${FIXTURE:-random}
mkdir -p "$W"
cd "$W"
if [ ! -f fx-F16.gguf ]; then
  case $FIXTURE in
    random) FX="--hidden 256 --heads 4 --linear-value-heads 4" ;;
    structured) FX="--hidden 512 --heads 8 --linear-value-heads 8 --structured" ;;
    *) echo "FIXTURE=$FIXTURE: expected random or structured" >&2; exit 2 ;;
  esac
  node "$ROOT/packages/fixtures/dist/cli.js" --arch qwen3_5 --out hf --layers 4 $FX --kv-heads 2 \
    --head-dim 64 --linear-value-head-dim 64 --linear-key-head-dim 64 --seed "${SEED:-7}" --force >/dev/null
  $QTK convert hf -o fx-F16.gguf >/dev/null
fi
cat $(find "$ROOT/packages/core/src" "$ROOT/packages/engine/src" "$ROOT/packages/convert/src" -name '*.ts' | sort) > calib.txt
cat "$ROOT/README.md" $(find "$ROOT/packages/quantize/src" "$ROOT/packages/serve/src" "$ROOT/packages/lora/src" -name '*.ts' | sort) > heldout.txt
[ -f imatrix.gguf ] || $QTK imatrix fx-F16.gguf --data calib.txt --chunks 8 --ctx 512 --threads "$T" -o imatrix.gguf >/dev/null
case " $METHODS " in *" imatrix-out "*)
  [ -f imatrix-out.gguf ] || $QTK imatrix fx-F16.gguf --data calib.txt --chunks 8 --ctx 512 --threads "$T" --process-output -o imatrix-out.gguf >/dev/null ;;
esac
[ -f base.kld ] || "$LB/llama-perplexity" -m fx-F16.gguf -f heldout.txt -c 512 --chunks 4 -t "$T" --kl-divergence-base base.kld >/dev/null 2>&1
echo "| preset | rounding | size (MiB) | bpw | mean KLD (qtk) | mean KLD (llama.cpp) | 99% KLD | same top | quantize s |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for P in $PRESETS; do
  for M in $METHODS; do
    OUT="fx-$P-$M.gguf"
    START=$(date +%s)
    case $M in
      rtn) $QTK quantize fx-F16.gguf "$OUT" --type "$P" --threads "$T" --force >q.log ;;
      imatrix) $QTK quantize fx-F16.gguf "$OUT" --type "$P" --imatrix imatrix.gguf --threads "$T" --force >q.log ;;
      imatrix-out) $QTK quantize fx-F16.gguf "$OUT" --type "$P" --imatrix imatrix-out.gguf --threads "$T" --force >q.log ;;
      gptq) $QTK quantize fx-F16.gguf "$OUT" --type "$P" --method gptq --calib calib.txt --calib-tokens 4096 --threads "$T" --force >q.log 2>&1 ;;
    esac
    SECS=$(( $(date +%s) - START ))
    BPW=$(grep -o '[0-9.]* bits per weight' q.log | cut -d' ' -f1)
    K=$($QTK eval kld fx-F16.gguf "$OUT" --data heldout.txt --ctx 512 --chunks 4 --threads "$T" --json 2>/dev/null | tail -1)
    L=$("$LB/llama-perplexity" -m "$OUT" -f heldout.txt -c 512 --chunks 4 -t "$T" --kl-divergence-base base.kld --kl-divergence 2>&1 | grep -E 'Mean +KLD:' | head -1 | sed -E 's/.*Mean +KLD: +//')
    node -e "const k=JSON.parse(process.argv[1]);const s=require('fs').statSync(process.argv[2]).size/1048576;console.log('| $P | $M | '+s.toFixed(2)+' | $BPW | '+k.meanKld.toFixed(4)+' ± '+k.meanKldError.toFixed(4)+' | '+process.argv[3]+' | '+k.p99Kld.toFixed(3)+' | '+(100*k.sameTop).toFixed(1)+' % | $SECS |')" "$K" "$OUT" "$L"
  done
done
