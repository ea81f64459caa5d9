#!/usr/bin/env bash
# GPTQ vs importance-matrix vs plain rounding at equal size: mean KLD against the f16 model on held-out text,
# by `qtk eval kld`. Fixture: the qwen3_5 test fixture, 256 wide (every matmul takes k-quants), 4 layers,
# real Qwen3 tokenizer; calibration text = this repository's core/engine/convert sources, held-out text =
# its quantize/serve/lora sources and READMEs (no overlap).
# Usage: npm run build && bash bench/gptq-kld.sh [workdir]   (prints a markdown table)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${1:-$(mktemp -d)}
QTK="node $ROOT/packages/cli/dist/main.js"
T=${THREADS:-2}
mkdir -p "$W"
cd "$W"
if [ ! -f fx-F16.gguf ]; then
  node "$ROOT/packages/fixtures/dist/cli.js" --arch qwen3_5 --out hf --layers 4 --hidden 256 --heads 4 --kv-heads 2 \
    --head-dim 64 --linear-value-heads 4 --linear-value-head-dim 64 --linear-key-head-dim 64 --seed 7 --force >/dev/null
  $QTK convert hf -o fx-F16.gguf >/dev/null
fi
cat $(find "$ROOT/packages/core/src" "$ROOT/packages/engine/src" "$ROOT/packages/convert/src" -name '*.ts' | sort) > calib.txt
cat "$ROOT/README.md" $(find "$ROOT/packages/quantize/src" "$ROOT/packages/serve/src" "$ROOT/packages/lora/src" -name '*.ts' | sort) > heldout.txt
[ -f imatrix.gguf ] || $QTK imatrix fx-F16.gguf --data calib.txt --chunks 8 --threads "$T" -o imatrix.gguf >/dev/null
echo "| preset | rounding | size (MiB) | bpw | mean KLD | 99% KLD | same top |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for P in Q4_K_M Q3_K_M IQ4_XS; do
  for M in rtn imatrix gptq; do
    OUT="fx-$P-$M.gguf"
    case $M in
      rtn) $QTK quantize fx-F16.gguf "$OUT" --type "$P" --threads "$T" --force >q.log ;;
      imatrix) $QTK quantize fx-F16.gguf "$OUT" --type "$P" --imatrix imatrix.gguf --threads "$T" --force >q.log ;;
      gptq) $QTK quantize fx-F16.gguf "$OUT" --type "$P" --method gptq --calib calib.txt --calib-tokens 2048 --threads "$T" --force >q.log 2>&1 ;;
    esac
    BPW=$(grep -o '[0-9.]* bits per weight' q.log | cut -d' ' -f1)
    K=$($QTK eval kld fx-F16.gguf "$OUT" --data heldout.txt --chunks 4 --threads "$T" --json 2>/dev/null | tail -1)
    node -e "const k=JSON.parse(process.argv[1]);const s=require('fs').statSync(process.argv[2]).size/1048576;console.log('| $P | $M | '+s.toFixed(2)+' | $BPW | '+k.meanKld.toFixed(4)+' ± '+k.meanKldError.toFixed(4)+' | '+k.p99Kld.toFixed(3)+' | '+(100*k.sameTop).toFixed(1)+' % |')" "$K" "$OUT"
  done
done
