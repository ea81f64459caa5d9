// Splits generated chat text into reasoning_content, content and tool_calls as llama-server's
// "deepseek" reasoning format and vLLM's qwen3 parser do. Works incrementally for streaming:
// text that might be the start of a tag is held back until the next token decides it.
import { isStringSchema, type ToolDef } from './grammar.js';
import type { ToolCallFormat } from './template.js';

export interface ParsedToolCall {
  name: string;
  /** JSON text, as OpenAI sends function.arguments. */
  arguments: string;
}

export interface OutputDelta {
  reasoning: string;
  content: string;
}

const THINK_OPEN = '<think>';
const THINK_CLOSE = '</think>';
const TOOL_OPEN = '<tool_call>';

function heldPrefix(text: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) if (text.endsWith(tag.slice(0, n))) return n;
  return 0;
}

export class ChatOutputParser {
  private state: 'start' | 'reasoning' | 'content' | 'tools';
  private buf = '';
  private toolText = '';
  private afterThink = false;
  reasoning = '';
  content = '';

  constructor(private readonly opts: { thinkingOpen: boolean; toolFormat: ToolCallFormat; parseTools: boolean; parseReasoning: boolean; tools?: ToolDef[] }) {
    this.state = opts.thinkingOpen && opts.parseReasoning ? 'reasoning' : 'start';
  }

  push(text: string): OutputDelta {
    this.buf += text;
    return this.drain(false);
  }

  /** Flushes what was held back and parses the tool calls. */
  finish(): OutputDelta & { toolCalls: ParsedToolCall[] } {
    const last = this.drain(true);
    let toolCalls: ParsedToolCall[] = [];
    if (this.toolText) {
      const parsed = parseToolCalls(this.toolText, this.opts.toolFormat, this.opts.tools);
      if (parsed) toolCalls = parsed;
      else {
        // Unparseable markup is returned as text rather than dropped.
        last.content += this.toolText;
        this.content += this.toolText;
      }
    }
    return { ...last, toolCalls };
  }

  private drain(final: boolean): OutputDelta {
    const out: OutputDelta = { reasoning: '', content: '' };
    for (;;) {
      if (this.state === 'start') {
        const t = this.buf.trimStart();
        if (!this.opts.parseReasoning) {
          this.state = 'content';
          continue;
        }
        if (!final && (t.length === 0 || (THINK_OPEN.startsWith(t) && t.length < THINK_OPEN.length))) break;
        if (t.startsWith(THINK_OPEN)) {
          this.buf = t.slice(THINK_OPEN.length);
          this.state = 'reasoning';
        } else this.state = 'content';
        continue;
      }
      if (this.state === 'reasoning') {
        const i = this.buf.indexOf(THINK_CLOSE);
        if (i >= 0) {
          out.reasoning += this.buf.slice(0, i);
          this.buf = this.buf.slice(i + THINK_CLOSE.length);
          this.state = 'content';
          this.afterThink = true;
          continue;
        }
        const keep = final ? 0 : heldPrefix(this.buf, THINK_CLOSE);
        out.reasoning += this.buf.slice(0, this.buf.length - keep);
        this.buf = this.buf.slice(this.buf.length - keep);
        break;
      }
      if (this.state === 'content') {
        if (this.afterThink) {
          // The template puts blank lines between </think> and the answer; they are not content.
          this.buf = this.buf.trimStart();
          if (this.buf.length === 0 && !final) break;
          this.afterThink = false;
        }
        const i = this.opts.parseTools ? this.buf.indexOf(TOOL_OPEN) : -1;
        if (i >= 0) {
          out.content += this.buf.slice(0, i);
          this.toolText = this.buf.slice(i);
          this.buf = '';
          this.state = 'tools';
          continue;
        }
        const keep = final || !this.opts.parseTools ? 0 : heldPrefix(this.buf, TOOL_OPEN);
        out.content += this.buf.slice(0, this.buf.length - keep);
        this.buf = this.buf.slice(this.buf.length - keep);
        break;
      }
      // tools: everything after the first <tool_call> is parsed at the end.
      this.toolText += this.buf;
      this.buf = '';
      break;
    }
    this.reasoning += out.reasoning;
    this.content += out.content;
    return out;
  }
}

/** Parses every <tool_call> block; null when any block is malformed. XML parameter values are JSON
 *  unless the tool's schema says string (the template writes strings raw). */
export function parseToolCalls(text: string, format: ToolCallFormat, tools: ToolDef[] = []): ParsedToolCall[] | null {
  const blocks = [...text.matchAll(/<tool_call>([\s\S]*?)(?:<\/tool_call>|$)/g)].map((m) => m[1]!.trim()).filter((b) => b.length > 0);
  if (blocks.length === 0) return null;
  const calls: ParsedToolCall[] = [];
  for (const block of blocks) {
    if (block.startsWith('<function=') || format === 'qwen-xml') {
      const fn = /^<function=([^>\n]+)>([\s\S]*?)(?:<\/function>|$)/.exec(block);
      if (!fn) return null;
      const args: Record<string, unknown> = {};
      const props = (tools.find((t) => t.function.name === fn[1]!.trim())?.function.parameters as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
      for (const p of fn[2]!.matchAll(/<parameter=([^>\n]+)>\n?([\s\S]*?)\n?<\/parameter>/g)) {
        const key = p[1]!.trim();
        const raw = p[2]!;
        if (isStringSchema(props[key])) args[key] = raw;
        else {
          try {
            args[key] = JSON.parse(raw);
          } catch {
            args[key] = raw;
          }
        }
      }
      calls.push({ name: fn[1]!.trim(), arguments: JSON.stringify(args) });
      continue;
    }
    try {
      const obj = JSON.parse(block) as { name?: unknown; arguments?: unknown; parameters?: unknown };
      if (typeof obj.name !== 'string') return null;
      const args = obj.arguments ?? obj.parameters ?? {};
      calls.push({ name: obj.name, arguments: typeof args === 'string' ? args : JSON.stringify(args) });
    } catch {
      return null;
    }
  }
  return calls;
}
