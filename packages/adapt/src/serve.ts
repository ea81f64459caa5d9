// --serve: the final model behind the OpenAI-compatible server, with the lines a user pastes to call it.
import { startServer } from '@qtk/serve';

export function clientSnippets(baseUrl: string, model: string): string {
  return [
    'Python (pip install openai):',
    '  from openai import OpenAI',
    `  client = OpenAI(base_url="${baseUrl}/v1", api_key="not-needed")`,
    `  r = client.chat.completions.create(model="${model}", messages=[{"role": "user", "content": "Explain this repository's build."}])`,
    '  print(r.choices[0].message.content)',
    'JavaScript (npm install openai):',
    "  import OpenAI from 'openai';",
    `  const client = new OpenAI({ baseURL: '${baseUrl}/v1', apiKey: 'not-needed' });`,
    `  const r = await client.chat.completions.create({ model: '${model}', messages: [{ role: 'user', content: "Explain this repository's build." }] });`,
    '  console.log(r.choices[0].message.content);',
  ].join('\n');
}

/** Serves until SIGINT/SIGTERM, then closes the server. */
export async function serveFinal(model: string, o: { port?: number; ctx: number; threads?: number; alias?: string; print: (l: string) => void; log: (l: string) => void }): Promise<void> {
  const handle = await startServer({ model, port: o.port ?? 8080, ctx: o.ctx, threads: o.threads, alias: o.alias, log: o.log });
  o.print(`serving ${model} at ${handle.url} (OpenAI-compatible; Ctrl-C stops it)`);
  o.print(clientSnippets(handle.url, handle.engine.modelId));
  await new Promise<void>((resolve) => {
    const stop = () => { handle.close().then(resolve, resolve); };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
