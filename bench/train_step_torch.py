#!/usr/bin/env python3
# One LoRA training step (forward + backward) of a Qwen3.5 (qwen3_5) checkpoint in PyTorch on CPU,
# implementing the Hugging Face math (modeling_qwen3_5: zero-centred RMSNorm, gated attention with
# partial RoPE, Gated DeltaNet with the causal conv and transformers' torch chunked delta rule, SwiGLU)
# with PEFT-style LoRA (y = W x + scale * B (A x)) on every linear of both layer kinds.
# Reads the checkpoint's safetensors directly (no extra packages). Prints one JSON line.
# Usage: python3 bench/train_step_torch.py <hf_dir> <tokens> <rank> <threads> [reps]
#        python3 bench/train_step_torch.py <hf_dir> <tokens> <rank> <threads> 0 <steps> <accum> <lr>
# The second form is a training run: <steps> AdamW updates of the LoRA parameters (B starts at zero, as in
# PEFT), each over <accum> sequences of <tokens>, gradient norm clipped to 1; it also reports the peak RSS.
import json, math, os, resource, struct, sys, time
import torch
import torch.nn.functional as F

hf, T, R, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
reps = int(sys.argv[5]) if len(sys.argv) > 5 else 3
train_steps = int(sys.argv[6]) if len(sys.argv) > 6 else 0
accum = int(sys.argv[7]) if len(sys.argv) > 7 else 1
lr = float(sys.argv[8]) if len(sys.argv) > 8 else 2e-4
torch.set_num_threads(threads)
torch.manual_seed(0)

cfg = json.load(open(os.path.join(hf, 'config.json')))
c = {**cfg, **cfg.get('text_config', {})}
H, I, L = c['hidden_size'], c['intermediate_size'], c['num_hidden_layers']
nh, nkv, hd = c['num_attention_heads'], c['num_key_value_heads'], c['head_dim']
hk, hv, dk, dv, K = c['linear_num_key_heads'], c['linear_num_value_heads'], c['linear_key_head_dim'], c['linear_value_head_dim'], c['linear_conv_kernel_dim']
eps = c['rms_norm_eps']
rope = c.get('rope_parameters', {})
rot = int(hd * rope.get('partial_rotary_factor', 0.25))
theta = rope.get('rope_theta', 1e7)

DT = {'BF16': torch.bfloat16, 'F16': torch.float16, 'F32': torch.float32}
W = {}
for f in sorted(os.listdir(hf)):
    if not f.endswith('.safetensors'):
        continue
    raw = open(os.path.join(hf, f), 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    for name, info in head.items():
        if name == '__metadata__' or not name.startswith(('model.language_model.', 'lm_head')):
            continue
        s, e = info['data_offsets']
        t = torch.frombuffer(bytearray(raw[8 + n + s:8 + n + e]), dtype=DT[info['dtype']]).reshape(info['shape'])
        W[name] = t.float()

def rmsnorm(x, w, zero_centred=True):
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return x * ((1 + w) if zero_centred else w)

scale = 2 * R / R  # alpha = 2 * rank
lora = {}
def linear(name, x):
    w = W[name + '.weight']
    if name not in lora:
        a = torch.empty(R, w.shape[1]).uniform_(-1 / math.sqrt(w.shape[1]), 1 / math.sqrt(w.shape[1]))
        b = torch.randn(w.shape[0], R) * (0.0 if os.environ.get('LORA_B_ZERO') or train_steps else 0.01)
        lora[name] = (a.requires_grad_(), b.requires_grad_())
    a, b = lora[name]
    return x @ w.t() + scale * ((x @ a.t()) @ b.t())

def chunk_gated_delta_rule(q, k, v, g, beta, C=64):
    # transformers' torch_chunk_gated_delta_rule (use_qk_l2norm_in_kernel=True), one sequence: [T, h, d]
    q = q * torch.rsqrt(q.pow(2).sum(-1, keepdim=True) + 1e-6)
    k = k * torch.rsqrt(k.pow(2).sum(-1, keepdim=True) + 1e-6)
    q, k, v, beta, g = [x.transpose(0, 1) for x in (q, k, v, beta, g)]  # [h, T, ...]
    Tn = q.shape[1]
    pad = (C - Tn % C) % C
    q, k, v = [F.pad(x, (0, 0, 0, pad)) for x in (q, k, v)]
    beta, g = F.pad(beta, (0, pad)), F.pad(g, (0, pad))
    q = q * (1 / math.sqrt(q.shape[-1]))
    v_beta, k_beta = v * beta[..., None], k * beta[..., None]
    h = q.shape[0]
    q, k, v, k_beta, v_beta = [x.reshape(h, -1, C, x.shape[-1]) for x in (q, k, v, k_beta, v_beta)]
    g = g.reshape(h, -1, C).cumsum(-1)
    decay = (g[..., :, None] - g[..., None, :]).tril().exp().tril()
    mask = torch.triu(torch.ones(C, C, dtype=torch.bool), 0)
    attn = -((k_beta @ k.transpose(-1, -2)) * decay).masked_fill(mask, 0)
    for i in range(1, C):
        row = attn[..., i, :i].clone()
        sub = attn[..., :i, :i].clone()
        attn[..., i, :i] = row + (row[..., None] * sub).sum(-2)
    attn = attn + torch.eye(C)
    v = attn @ v_beta
    k_cum = attn @ (k_beta * g.exp()[..., None])
    S = torch.zeros(h, q.shape[-1], v.shape[-1])
    mask1 = torch.triu(torch.ones(C, C, dtype=torch.bool), 1)
    outs = []
    for i in range(q.shape[1]):
        qi, ki, vi = q[:, i], k[:, i], v[:, i]
        a = (qi @ ki.transpose(-1, -2) * decay[:, i]).masked_fill(mask1, 0)
        v_new = vi - k_cum[:, i] @ S
        outs.append((qi * g[:, i, :, None].exp()) @ S + a @ v_new)
        S = S * g[:, i, -1, None, None].exp() + (ki * (g[:, i, -1, None] - g[:, i]).exp()[..., None]).transpose(-1, -2) @ v_new
    o = torch.stack(outs, 1).reshape(h, -1, v.shape[-1])[:, :Tn]
    return o.transpose(0, 1)

def deltanet(p, x):
    Tn = x.shape[0]
    qkv = linear(p + '.in_proj_qkv', x)
    z = linear(p + '.in_proj_z', x).reshape(Tn, hv, dv)
    b = linear(p + '.in_proj_b', x)
    a = linear(p + '.in_proj_a', x)
    conv = F.silu(F.conv1d(qkv.t()[None], W[p + '.conv1d.weight'], padding=K - 1, groups=qkv.shape[1])[0, :, :Tn].t())
    q, k, v = torch.split(conv, [hk * dk, hk * dk, hv * dv], -1)
    q, k, v = q.reshape(Tn, hk, dk), k.reshape(Tn, hk, dk), v.reshape(Tn, hv, dv)
    beta = torch.sigmoid(b)
    g = -W[p + '.A_log'].exp() * F.softplus(a + W[p + '.dt_bias'])
    q, k = q.repeat_interleave(hv // hk, 1), k.repeat_interleave(hv // hk, 1)
    o = chunk_gated_delta_rule(q, k, v, g, beta)
    o = rmsnorm(o, W[p + '.norm.weight'], False) * F.silu(z)
    return linear(p + '.out_proj', o.reshape(Tn, hv * dv))

inv = 1.0 / (theta ** (torch.arange(0, rot, 2).float() / rot))
def rope_(x, pos):
    f = pos[:, None].float() * inv[None]
    cos, sin = torch.cat([f, f], -1).cos()[:, None], torch.cat([f, f], -1).sin()[:, None]
    xr, xp = x[..., :rot], x[..., rot:]
    x1, x2 = xr[..., :rot // 2], xr[..., rot // 2:]
    return torch.cat([xr * cos + torch.cat([-x2, x1], -1) * sin, xp], -1)

def attention(p, x):
    Tn = x.shape[0]
    qg = linear(p + '.q_proj', x).reshape(Tn, nh, 2 * hd)
    q, gate = qg[..., :hd], qg[..., hd:].reshape(Tn, nh * hd)
    k = linear(p + '.k_proj', x).reshape(Tn, nkv, hd)
    v = linear(p + '.v_proj', x).reshape(Tn, nkv, hd)
    pos = torch.arange(Tn)
    q = rope_(rmsnorm(q, W[p + '.q_norm.weight']), pos)
    k = rope_(rmsnorm(k, W[p + '.k_norm.weight']), pos)
    k, v = k.repeat_interleave(nh // nkv, 1), v.repeat_interleave(nh // nkv, 1)
    q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [heads, T, hd]
    s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    s = s.masked_fill(torch.triu(torch.ones(Tn, Tn, dtype=torch.bool), 1), float('-inf'))
    o = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(Tn, nh * hd) * torch.sigmoid(gate)
    return linear(p + '.o_proj', o)

tokens_all = torch.tensor([(i * 7919) % 150000 for i in range(T)])
def step(tokens, zero=True):
    x = W['model.language_model.embed_tokens.weight'][tokens]
    for i in range(L):
        p = f'model.language_model.layers.{i}'
        h = rmsnorm(x, W[p + '.input_layernorm.weight'])
        x = x + (attention(p + '.self_attn', h) if (i + 1) % 4 == 0 else deltanet(p + '.linear_attn', h))
        h = rmsnorm(x, W[p + '.post_attention_layernorm.weight'])
        x = x + linear(p + '.mlp.down_proj', F.silu(linear(p + '.mlp.gate_proj', h)) * linear(p + '.mlp.up_proj', h))
    h = rmsnorm(x, W['model.language_model.norm.weight'])
    logits = h @ W['lm_head.weight'].t()
    loss = F.cross_entropy(logits[:-1], tokens[1:], reduction='sum')
    if zero:
        for a, b in lora.values():
            a.grad = b.grad = None
    loss.backward()
    return loss.item()

if train_steps:
    # The optimizer is made after the first micro-batch, whose forward creates the LoRA parameters.
    opt, times, losses = None, [], []
    for st in range(train_steps):
        t0 = time.perf_counter()
        if opt:
            opt.zero_grad(set_to_none=True)
        loss = sum(step(torch.roll(tokens_all, st * accum + j), zero=False) for j in range(accum)) / (accum * (T - 1))
        params = [p for ab in lora.values() for p in ab]
        opt = opt or torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(loss)
        print(f'pytorch train step {st + 1}/{train_steps}: {times[-1]:.1f} s, loss {loss:.4f}', file=sys.stderr, flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(json.dumps({'impl': 'pytorch', 'torch': torch.__version__, 'tokens': T * accum * train_steps, 'targets': len(lora), 'threads': threads, 'times': times, 'losses': losses, 'peakRssBytes': peak}))
    sys.exit(0)

step(tokens_all[:16])  # creates the LoRA parameters (their shapes do not depend on the length) and warms up
times = []
for r in range(reps):
    t0 = time.perf_counter()
    loss = step(tokens_all)
    times.append(time.perf_counter() - t0)
    print(f'pytorch step {r + 1}/{reps}: {times[-1]:.1f} s', file=sys.stderr, flush=True)
print(json.dumps({'impl': 'pytorch', 'torch': torch.__version__, 'tokens': T, 'targets': len(lora), 'threads': threads, 'times': times, 'loss': loss}))
