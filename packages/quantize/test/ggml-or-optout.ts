// ggml is the oracle of these suites: a missing or broken library fails them (the load throws
// with the reason). Only an explicit QTK_ALLOW_NO_GGML=1 turns that into a skip, for platforms
// that node-llama-cpp ships no prebuilt binaries for.
import { loadGgmlQuantizer, type GgmlQuantizer } from '../src/native/ggml-quantize.js';

export function ggmlOrOptOut(): GgmlQuantizer | null {
  if (process.env['QTK_ALLOW_NO_GGML'] === '1') {
    try {
      return loadGgmlQuantizer();
    } catch {
      return null;
    }
  }
  return loadGgmlQuantizer();
}
