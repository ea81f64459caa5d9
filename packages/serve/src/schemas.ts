// JSON schemas for request bodies; fastify validates them before a handler runs, so a malformed
// request is a 400 naming the field. Unknown fields are allowed, as OpenAI clients send extras.

const num = (min?: number, max?: number) => ({ type: ['number', 'null'], ...(min === undefined ? {} : { minimum: min }), ...(max === undefined ? {} : { maximum: max }) });
const int = (min?: number, max?: number) => ({ type: ['integer', 'null'], ...(min === undefined ? {} : { minimum: min }), ...(max === undefined ? {} : { maximum: max }) });

const common = {
  model: { type: 'string' },
  stream: { type: ['boolean', 'null'] },
  stream_options: { type: ['object', 'null'], properties: { include_usage: { type: 'boolean' } } },
  max_tokens: int(0),
  max_completion_tokens: int(0),
  temperature: num(0, 2),
  top_p: num(0, 1),
  top_k: int(0),
  min_p: num(0, 1),
  seed: int(),
  stop: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, maxItems: 16 }, { type: 'null' }] },
  presence_penalty: num(-2, 2),
  frequency_penalty: num(-2, 2),
  repeat_penalty: num(0),
  repeat_last_n: int(0, 4096),
  n: int(1, 1),
  // Keys are token ids, as OpenAI sends them.
  logit_bias: { type: ['object', 'null'], propertyNames: { pattern: '^[0-9]+$' }, additionalProperties: { type: 'number', minimum: -100, maximum: 100 }, maxProperties: 1024 },
  lora: {
    type: 'array',
    items: { type: 'object', required: ['id', 'scale'], properties: { id: { type: 'integer', minimum: 0 }, scale: { type: 'number' } } },
  },
  response_format: {
    type: 'object',
    required: ['type'],
    properties: {
      type: { enum: ['text', 'json_object', 'json_schema'] },
      json_schema: { type: 'object', properties: { name: { type: 'string' }, schema: { type: 'object' }, strict: { type: ['boolean', 'null'] } } },
      schema: { type: 'object' },
    },
  },
} as const;

const contentSchema = {
  anyOf: [
    { type: 'string' },
    { type: 'null' },
    { type: 'array', items: { type: 'object', required: ['type'], properties: { type: { type: 'string' }, text: { type: 'string' } } } },
  ],
} as const;

export const chatBodySchema = {
  type: 'object',
  required: ['messages'],
  properties: {
    ...common,
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { enum: ['system', 'developer', 'user', 'assistant', 'tool'] },
          content: contentSchema,
          name: { type: 'string' },
          tool_call_id: { type: 'string' },
          reasoning_content: { type: ['string', 'null'] },
          tool_calls: {
            type: 'array',
            items: {
              type: 'object',
              required: ['function'],
              properties: {
                id: { type: 'string' },
                type: { type: 'string' },
                function: { type: 'object', required: ['name', 'arguments'], properties: { name: { type: 'string' }, arguments: { anyOf: [{ type: 'string' }, { type: 'object' }] } } },
              },
            },
          },
        },
      },
    },
    tools: {
      type: 'array',
      items: {
        type: 'object',
        required: ['type', 'function'],
        properties: {
          type: { const: 'function' },
          function: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 }, description: { type: 'string' }, parameters: { type: 'object' } } },
        },
      },
    },
    tool_choice: {
      anyOf: [
        { enum: ['none', 'auto', 'required'] },
        { type: 'object', required: ['type', 'function'], properties: { type: { const: 'function' }, function: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } },
      ],
    },
    parallel_tool_calls: { type: ['boolean', 'null'] },
    logprobs: { type: ['boolean', 'null'] },
    top_logprobs: int(0, 20),
    chat_template_kwargs: { type: 'object' },
    reasoning_format: { enum: ['none', 'deepseek', 'auto'] },
  },
} as const;

export const completionBodySchema = {
  type: 'object',
  required: ['prompt'],
  properties: {
    ...common,
    prompt: {
      anyOf: [
        { type: 'string' },
        { type: 'array', minItems: 1, items: { type: 'string' } },
        { type: 'array', minItems: 1, items: { type: 'integer' } },
        { type: 'array', minItems: 1, items: { type: 'array', items: { type: 'integer' } } },
      ],
    },
    logprobs: int(0, 20),
    echo: { type: ['boolean', 'null'] },
    suffix: { type: ['string', 'null'] },
  },
} as const;

export const loraPostSchema = {
  type: 'array',
  items: { type: 'object', required: ['id', 'scale'], properties: { id: { type: 'integer', minimum: 0 }, scale: { type: 'number' } } },
} as const;
