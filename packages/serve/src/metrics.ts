// Prometheus text exposition (format 0.0.4). Token counters and gauges carry llama-server's
// `llamacpp:` names so dashboards built for it keep working; request counters and histograms are qtk's own.
import type { DecodeStats } from './llama/scheduler.js';

const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] as const;

class Histogram {
  readonly counts = new Array<number>(DURATION_BUCKETS.length).fill(0);
  sum = 0;
  count = 0;
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < DURATION_BUCKETS.length; i++) if (v <= DURATION_BUCKETS[i]!) this.counts[i]!++;
  }
  render(name: string, labels: string): string[] {
    const sep = labels ? ',' : '';
    const lines = DURATION_BUCKETS.map((b, i) => `${name}_bucket{${labels}${sep}le="${b}"} ${this.counts[i]}`);
    lines.push(`${name}_bucket{${labels}${sep}le="+Inf"} ${this.count}`);
    lines.push(`${name}_sum${labels ? `{${labels}}` : ''} ${this.sum}`);
    lines.push(`${name}_count${labels ? `{${labels}}` : ''} ${this.count}`);
    return lines;
  }
}

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly durations = new Map<string, Histogram>();
  private readonly ttft = new Histogram();
  promptTokens = 0;
  cachedPromptTokens = 0;
  predictedTokens = 0;
  promptSeconds = 0;
  predictedSeconds = 0;
  cancelled = 0;
  timeouts = 0;
  rejected = 0;

  constructor(
    private readonly gauges: () => { processing: number; deferred: number; slotsIdle: number; slotsTotal: number },
    private readonly decodes: () => DecodeStats = () => ({ calls: 0, tokens: 0, decodeSeconds: 0, stepSeconds: 0, checkpointSeconds: 0 }),
  ) {}

  /** One finished HTTP request: `endpoint` is the route pattern, never the raw URL (bounded label set). */
  request(endpoint: string, status: number, seconds: number): void {
    const key = `endpoint="${endpoint}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    let h = this.durations.get(endpoint);
    if (!h) this.durations.set(endpoint, (h = new Histogram()));
    h.observe(seconds);
    if (status === 429) this.rejected++;
  }

  generation(g: { promptTokens: number; cachedTokens: number; predicted: number; promptSeconds: number; predictSeconds: number; ttftSeconds?: number }): void {
    this.promptTokens += g.promptTokens;
    this.cachedPromptTokens += g.cachedTokens;
    this.predictedTokens += g.predicted;
    this.promptSeconds += g.promptSeconds;
    this.predictedSeconds += g.predictSeconds;
    if (g.ttftSeconds !== undefined) this.ttft.observe(g.ttftSeconds);
  }

  render(): string {
    const g = this.gauges();
    const out: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string, lines: string[]): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    };
    metric('llamacpp:prompt_tokens_total', 'counter', 'Number of prompt tokens processed.', [`llamacpp:prompt_tokens_total ${this.promptTokens}`]);
    metric('llamacpp:prompt_tokens_cached_total', 'counter', 'Number of prompt tokens reused from the cache.', [`llamacpp:prompt_tokens_cached_total ${this.cachedPromptTokens}`]);
    metric('llamacpp:prompt_seconds_total', 'counter', 'Prompt process time', [`llamacpp:prompt_seconds_total ${this.promptSeconds}`]);
    metric('llamacpp:tokens_predicted_total', 'counter', 'Number of generation tokens processed.', [`llamacpp:tokens_predicted_total ${this.predictedTokens}`]);
    metric('llamacpp:tokens_predicted_seconds_total', 'counter', 'Predict process time', [`llamacpp:tokens_predicted_seconds_total ${this.predictedSeconds}`]);
    const d = this.decodes();
    metric('qtk_decode_calls_total', 'counter', 'llama_decode calls (one per step for all active sequences).', [`qtk_decode_calls_total ${d.calls}`]);
    metric('qtk_decode_tokens_total', 'counter', 'Tokens evaluated by those calls (prompt and generated).', [`qtk_decode_tokens_total ${d.tokens}`]);
    metric('qtk_decode_tokens_per_call', 'gauge', 'Mean tokens per llama_decode call since start.', [`qtk_decode_tokens_per_call ${d.calls > 0 ? d.tokens / d.calls : 0}`]);
    metric('qtk_decode_seconds_total', 'counter', 'Seconds inside llama_decode.', [`qtk_decode_seconds_total ${d.decodeSeconds}`]);
    metric('qtk_step_seconds_total', 'counter', 'Seconds of the decode steps outside llama_decode (batch layout, sampling, prompt-end checkpoints).', [`qtk_step_seconds_total ${d.stepSeconds}`]);
    metric('qtk_checkpoint_seconds_total', 'counter', 'Seconds saving the recurrent state at prompt ends (part of the step seconds).', [`qtk_checkpoint_seconds_total ${d.checkpointSeconds}`]);
    metric('llamacpp:requests_processing', 'gauge', 'Number of requests processing.', [`llamacpp:requests_processing ${g.processing}`]);
    metric('llamacpp:requests_deferred', 'gauge', 'Number of requests deferred (queue depth).', [`llamacpp:requests_deferred ${g.deferred}`]);
    metric('qtk_slots_idle', 'gauge', 'Sequences free to take a request.', [`qtk_slots_idle ${g.slotsIdle}`]);
    metric('qtk_slots_total', 'gauge', 'Sequences served at once (--parallel).', [`qtk_slots_total ${g.slotsTotal}`]);
    metric('qtk_requests_total', 'counter', 'HTTP requests by endpoint and status.', [...this.requests].map(([k, v]) => `qtk_requests_total{${k}} ${v}`));
    const errors = [...this.requests].filter(([k]) => !/status="[23]\d\d"/.test(k)).reduce((s, [, v]) => s + v, 0);
    metric('qtk_request_errors_total', 'counter', 'HTTP requests answered with an error status.', [`qtk_request_errors_total ${errors}`]);
    metric('qtk_requests_rejected_total', 'counter', 'Requests answered 429 because the queue was full.', [`qtk_requests_rejected_total ${this.rejected}`]);
    metric('qtk_requests_cancelled_total', 'counter', 'Generations stopped because the client went away.', [`qtk_requests_cancelled_total ${this.cancelled}`]);
    metric('qtk_requests_timed_out_total', 'counter', 'Generations stopped by the per-request timeout.', [`qtk_requests_timed_out_total ${this.timeouts}`]);
    metric('qtk_request_duration_seconds', 'histogram', 'HTTP request latency by endpoint.', [...this.durations].flatMap(([e, h]) => h.render('qtk_request_duration_seconds', `endpoint="${e}"`)));
    metric('qtk_time_to_first_token_seconds', 'histogram', 'Time from request arrival to the first generated token.', this.ttft.render('qtk_time_to_first_token_seconds', ''));
    return out.join('\n') + '\n';
  }
}
