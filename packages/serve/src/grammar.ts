// Constrained output through llama.cpp grammars: response_format json_object / json_schema, and
// tool_choice "required" or a named function, which force one call in the template's own markup.
import type { GbnfJsonSchema, Llama, LlamaGrammar } from 'node-llama-cpp';
import { badRequest } from './errors.js';
import type { ToolCallFormat } from './template.js';

export interface ToolDef {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

export interface ResponseFormat {
  type: 'text' | 'json_object' | 'json_schema';
  json_schema?: { name?: string; schema?: Record<string, unknown>; strict?: boolean };
  /** llama-server also accepts a schema directly on json_object. */
  schema?: Record<string, unknown>;
}

/** node-llama-cpp ends its JSON roots with newlines that its chat loop treats as a stop trigger;
 *  without them the grammar completes at the closing brace and llama.cpp can only sample end-of-generation. */
function withoutTrailingNewlines(gbnf: string): string {
  return gbnf.replace(/ "\\n\\n\\n\\n" \[\\n\]\*(?=\n|$)/, '');
}

async function schemaGbnf(llama: Llama, schema: unknown, param: string): Promise<string> {
  try {
    return withoutTrailingNewlines((await llama.createGrammarForJsonSchema(schema as Readonly<GbnfJsonSchema> as never)).grammar);
  } catch (err) {
    throw badRequest(`${param}: this JSON schema cannot be turned into a grammar (${(err as Error).message}). Use types, properties, required, enum, const, items, anyOf/oneOf and $defs.`, param, 'invalid_json_schema');
  }
}

async function schemaGrammar(llama: Llama, schema: unknown, param: string): Promise<LlamaGrammar> {
  return llama.createGrammar({ grammar: await schemaGbnf(llama, schema, param) });
}

export async function responseFormatGrammar(llama: Llama, rf: ResponseFormat | undefined): Promise<LlamaGrammar | undefined> {
  if (!rf || rf.type === 'text') return undefined;
  if (rf.type === 'json_object') return rf.schema ? schemaGrammar(llama, rf.schema, 'response_format.schema') : llama.getGrammarFor('json');
  if (!rf.json_schema?.schema) throw badRequest('response_format.json_schema.schema is required when type is "json_schema".', 'response_format.json_schema');
  return schemaGrammar(llama, rf.json_schema.schema, 'response_format.json_schema.schema');
}

/** The tools a forced tool_choice allows, or null when the model may answer freely. */
export function forcedTools(tools: ToolDef[] | undefined, choice: ToolChoice | undefined): ToolDef[] | null {
  if (!tools || tools.length === 0 || choice === undefined || choice === 'auto' || choice === 'none') return null;
  if (choice === 'required') return tools;
  const named = tools.find((t) => t.function.name === choice.function.name);
  if (!named) throw badRequest(`tool_choice names function "${choice.function.name}", which is not in tools (${tools.map((t) => t.function.name).join(', ')}).`, 'tool_choice');
  return [named];
}

/** A grammar for exactly one call to one of `tools`, written the way the chat template writes calls. */
export async function toolCallGrammar(llama: Llama, tools: ToolDef[], format: ToolCallFormat): Promise<LlamaGrammar> {
  if (format === 'qwen-xml') return llama.createGrammar({ grammar: await xmlToolCallGbnf(llama, tools), rootRuleName: 'qtk-tool-call' });
  if (format !== 'hermes') {
    throw badRequest('tool_choice "required" or a named function needs a chat template that writes tool calls; this model\'s template has none. Leave tool_choice out.', 'tool_choice', 'unsupported_tool_choice');
  }
  const call = (t: ToolDef): Record<string, unknown> => ({
    type: 'object',
    properties: { name: { const: t.function.name }, arguments: t.function.parameters ?? { type: 'object', properties: {} } },
    required: ['name', 'arguments'],
  });
  const schema = tools.length === 1 ? call(tools[0]!) : { oneOf: tools.map(call) };
  const json = await schemaGbnf(llama, schema, 'tools');
  // The JSON grammar's root sits inside the template's markers; the wrapper becomes the new root.
  const text = `${json}\nqtk-tool-call ::= "<tool_call>\\n" root "\\n</tool_call>"\n`;
  return llama.createGrammar({ grammar: text, rootRuleName: 'qtk-tool-call' });
}

const gbnfString = (s: string): string => JSON.stringify(s);

/** Renames every rule of a GBNF text, so several grammars can live in one (names outside strings and classes). */
export function prefixRules(gbnf: string, prefix: string): string {
  const names = new Set([...gbnf.matchAll(/^([a-zA-Z0-9-]+)\s*::=/gm)].map((m) => m[1]!));
  let out = '';
  for (let i = 0; i < gbnf.length; ) {
    const c = gbnf[i]!;
    if (c === '"' || c === '[') {
      const close = c === '"' ? '"' : ']';
      let j = i + 1;
      while (j < gbnf.length && gbnf[j] !== close) j += gbnf[j] === '\\' ? 2 : 1;
      out += gbnf.slice(i, j + 1);
      i = j + 1;
    } else if (c === '#') {
      const j = gbnf.indexOf('\n', i);
      const end = j < 0 ? gbnf.length : j;
      out += gbnf.slice(i, end);
      i = end;
    } else if (/[a-zA-Z0-9-]/.test(c)) {
      let j = i;
      while (j < gbnf.length && /[a-zA-Z0-9-]/.test(gbnf[j]!)) j++;
      const id = gbnf.slice(i, j);
      out += names.has(id) ? prefix + id : id;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** True when the template writes this parameter's value as raw text (strings) rather than JSON. */
export function isStringSchema(schema: unknown): boolean {
  const s = schema as { type?: unknown; enum?: unknown[] } | undefined;
  if (s?.type === 'string') return true;
  return Array.isArray(s?.enum) && s.enum.length > 0 && s.enum.every((v) => typeof v === 'string');
}

/** Qwen3.5/3.6 (Qwen3-Coder) calls: <function=NAME> with one <parameter=KEY> block per argument;
 *  strings are written raw, other values as JSON (as the template renders them). */
async function xmlToolCallGbnf(llama: Llama, tools: ToolDef[]): Promise<string> {
  const rules: string[] = [];
  const fns: string[] = [];
  for (const [ti, tool] of tools.entries()) {
    const params = (tool.function.parameters ?? {}) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
    const required = new Set(params.required ?? []);
    const parts: string[] = [];
    for (const [pi, [key, schema]] of Object.entries(params.properties ?? {}).entries()) {
      const value = `t${ti}-p${pi}-value`;
      const en = schema.enum as unknown[] | undefined;
      if (Array.isArray(en) && en.every((v) => typeof v === 'string')) rules.push(`${value} ::= ${en.map((v) => gbnfString(v as string)).join(' | ')}`);
      else if (schema.type === 'string') rules.push(`${value} ::= [^<]*`);
      else {
        const json = prefixRules(await schemaGbnf(llama, schema, `tools[${ti}].function.parameters.properties.${key}`), `t${ti}-p${pi}-`);
        rules.push(json, `${value} ::= t${ti}-p${pi}-root`);
      }
      const param = `${gbnfString(`<parameter=${key}>\n`)} ${value} ${gbnfString('\n</parameter>\n')}`;
      parts.push(required.has(key) ? param : `(${param})?`);
    }
    rules.push(`t${ti}-call ::= ${gbnfString(`<tool_call>\n<function=${tool.function.name}>\n`)} ${parts.join(' ')} ${gbnfString('</function>\n</tool_call>')}`);
    fns.push(`t${ti}-call`);
  }
  return `qtk-tool-call ::= ${fns.join(' | ')}\n${rules.join('\n')}\n`;
}
