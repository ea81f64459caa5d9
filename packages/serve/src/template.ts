// Chat prompts from the model's own Jinja template (tokenizer.chat_template in the GGUF), rendered
// with OpenAI-shaped messages and tools as llama-server does, plus chat_template_kwargs
// (Qwen's enable_thinking). Tool-call and reasoning markup are read from the template text.
import { Template } from '@huggingface/jinja';
import { badRequest } from './errors.js';

export type ToolCallFormat = 'hermes' | 'qwen-xml' | null;

export interface ChatTemplate {
  render(vars: { messages: unknown[]; tools?: unknown[]; kwargs?: Record<string, unknown> }): string;
  /** How the template writes tool calls: Qwen3's JSON in <tool_call>, or Qwen3.5/3.6's <function=…> XML. */
  readonly toolFormat: ToolCallFormat;
  readonly supportsThinking: boolean;
}

/** Used when a GGUF carries no template: plain ChatML, which Qwen models were trained on. */
const CHATML = `{%- for message in messages %}{{ '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{%- endif %}`;

export function loadChatTemplate(source: string | undefined, specials: { bos: string | null; eos: string | null }): ChatTemplate {
  const text = source ?? CHATML;
  const tpl = new Template(text);
  const toolFormat: ToolCallFormat = text.includes('<function=') ? 'qwen-xml' : text.includes('<tool_call>') ? 'hermes' : null;
  return {
    toolFormat,
    supportsThinking: text.includes('<think>'),
    render({ messages, tools, kwargs }) {
      try {
        return tpl.render({
          messages,
          ...(tools && tools.length > 0 ? { tools } : {}),
          add_generation_prompt: true,
          bos_token: specials.bos ?? '',
          eos_token: specials.eos ?? '',
          ...kwargs,
        });
      } catch (err) {
        throw badRequest(`The model's chat template could not render these messages: ${(err as Error).message}. Check the roles and content of the messages.`, 'messages', 'template_error');
      }
    },
  };
}

/** True when the rendered prompt leaves a <think> block open (Qwen3.5/3.6 with thinking on). */
export function endsInsideThinking(prompt: string): boolean {
  const last = prompt.lastIndexOf('<think>');
  return last >= 0 && prompt.indexOf('</think>', last) < 0 && prompt.slice(last + 7).trim() === '';
}
