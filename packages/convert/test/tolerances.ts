// Tolerances for llama.cpp vs the reference forward, and the texts the oracle tests use.

// Max |Δ log p| over every position and the whole vocabulary, llama.cpp vs the reference forward.
// f32 GGUF vs exact float64 math: llama.cpp still stores K/V in an f16 cache and sums in f32 in its own
// order; docs/architecture.md notes max |Δ logit| ≈ 0.02 for an 8-layer fixture, and log p adds at most the same
// again through log Z. Measured here: 0.017 (qwen3), 0.005 (qwen3_5).
export const F32_TOLERANCE = 0.05;
// f16 GGUF: llama.cpp's CPU backend rounds matmul inputs to f16; the reference emulates that
// (roundMatmulInputs: 'f16'), leaving the same f16 KV cache and ordering effects plus f16 activations
// feeding the cache. Measured: 0.030 (qwen3), 0.031 (qwen3_5); unemulated, 0.2 would apply.
// A missing transform (no +1 on norms, no V-head reorder) gives 30–46: orders of magnitude above.
export const F16_TOLERANCE = 0.1;

export const PROMPT = 'def add(a, b):\n    return a + b  # 加法 ✅';

/**
 * Code, CJK, emoji (ZWJ sequence, skin tone), combining marks (Devanagari vowel signs, which NFC keeps),
 * digits and special tokens. Text is NFC already: HF's Qwen tokenizer NFC-normalizes, llama.cpp does not,
 * so a decomposed "e\u0301" tokenizes differently in llama.cpp whatever the GGUF says.
 */
export const MIXED_TEXT =
  '<|im_start|>user\nfn main() { println!("{}", 3.14159 * r*r); } // 面积\n'
  + '日本語のテキストと中文混排，한국어도。👩‍💻👍🏽 naïve café — नमस्ते दुनिया ภาษาไทย مَرْحَبًا ١٢٣ 12345\n'
  + '<think>\nok</think><|im_end|>\n<|im_start|>assistant\n';
