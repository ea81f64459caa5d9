// The reasoning / content / tool-call split, fed whole and one character at a time (as streaming does).
import { describe, expect, it } from 'vitest';
import { ChatOutputParser, parseLoraArg, partialStopLength } from '../src/index.js';

function run(text: string, opts: ConstructorParameters<typeof ChatOutputParser>[0], step: number) {
  const p = new ChatOutputParser(opts);
  let reasoning = '';
  let content = '';
  for (let i = 0; i < text.length; i += step) {
    const d = p.push(text.slice(i, i + step));
    reasoning += d.reasoning;
    content += d.content;
  }
  const last = p.finish();
  return { reasoning: reasoning + last.reasoning, content: content + last.content, toolCalls: last.toolCalls };
}

const base = { thinkingOpen: false, toolFormat: 'hermes' as const, parseTools: true, parseReasoning: true };

describe('ChatOutputParser', () => {
  for (const step of [1, 3, 1000]) {
    it(`splits <think> from the answer (chunks of ${step})`, () => {
      const r = run('<think>\nI should greet.\n</think>\n\nHello there!', base, step);
      expect(r).toEqual({ reasoning: '\nI should greet.\n', content: 'Hello there!', toolCalls: [] });
    });
    it(`reads reasoning when the template opened <think> in the prompt (chunks of ${step})`, () => {
      const r = run('Let me think.</think>\n\nAnswer', { ...base, thinkingOpen: true }, step);
      expect(r).toEqual({ reasoning: 'Let me think.', content: 'Answer', toolCalls: [] });
    });
    it(`parses Qwen3 JSON tool calls (chunks of ${step})`, () => {
      const text = 'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n<tool_call>\n{"name": "t2", "arguments": {}}\n</tool_call>';
      const r = run(text, base, step);
      expect(r.content).toBe('Checking.\n');
      expect(r.toolCalls).toEqual([
        { name: 'get_weather', arguments: '{"city":"Oslo"}' },
        { name: 't2', arguments: '{}' },
      ]);
    });
    it(`parses Qwen3.5/3.6 XML tool calls (chunks of ${step})`, () => {
      const text = '<tool_call>\n<function=get_weather>\n<parameter=city>\nOslo\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>';
      const r = run(text, { ...base, toolFormat: 'qwen-xml' }, step);
      expect(r.toolCalls).toEqual([{ name: 'get_weather', arguments: '{"city":"Oslo","days":3}' }]);
    });
  }
  it('keeps malformed tool markup as content instead of dropping it', () => {
    const r = run('<tool_call>{not json</tool_call>', base, 2);
    expect(r.toolCalls).toEqual([]);
    expect(r.content).toBe('<tool_call>{not json</tool_call>');
  });
  it('leaves <think> in content when reasoning_format is none', () => {
    const r = run('<think>x</think>y', { ...base, parseReasoning: false }, 1);
    expect(r).toEqual({ reasoning: '', content: '<think>x</think>y', toolCalls: [] });
  });
});

describe('helpers', () => {
  it('holds back a possible stop-string prefix', () => {
    expect(partialStopLength('hello wor', ['world'])).toBe(3);
    expect(partialStopLength('hello', ['world'])).toBe(0);
    expect(partialStopLength('ab', ['b', 'abc'])).toBe(2);
  });
  it('parses --lora path[:scale]', () => {
    expect(parseLoraArg('a.gguf')).toEqual({ path: 'a.gguf', scale: 1 });
    expect(parseLoraArg('a.gguf:0.5')).toEqual({ path: 'a.gguf', scale: 0.5 });
    expect(parseLoraArg('C:/x/a.gguf')).toEqual({ path: 'C:/x/a.gguf', scale: 1 });
    expect(parseLoraArg('a.gguf:-1e-1')).toEqual({ path: 'a.gguf', scale: -0.1 });
  });
});
