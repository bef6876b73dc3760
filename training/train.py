#!/usr/bin/env python3
"""Trains our small LLaVA for the shapes domain in the paper's stages (see training/README.md).

    /usr/bin/python3 training/train.py --pack DIR [--steps ...]

DIR is what `npx tsx training/pack.ts` wrote: ckpt/ (llava-hf config and tokenizer files), pixels.u8,
images.json, stage1.jsonl, stage2.jsonl. The trained weights go to DIR/ckpt/model.safetensors with
llava-hf names, which `llava convert` reads. PyTorch only (Debian's python3-torch); no other package.

The modules below follow transformers' CLIPVisionModel, LlavaMultiModalProjector and LlamaForCausalLM
arithmetic (pre-LN CLIP with quick_gelu, exact-erf GELU projector, RMSNorm in float32, rotate-half RoPE,
no biases in LLaMA) so that the converter's ONNX graphs compute the same function.
"""
import argparse
import itertools
import json
import math
import os
import random
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGE_TOKEN = 32000
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
ATTENTION_CHUNKS = 3  # LlamaAttention in training: query bands scored against the keys up to their own end (2/3 of the scores)
MICRO_BATCH_SCORES = 1 << 20  # micro_batches: padded attention scores per micro-batch, all heads together (4 heads: 4 sequences of 256)
LOW_PRECISION = None  # --bf16: the device type (cpu, cuda) whose training forward passes run under bfloat16 autocast


def low_precision():
    """--bf16: the training steps' matrix products in bfloat16, the weights, their gradients, the optimiser, the
    losses and every sum that autocast keeps in float32 as before (mixed precision). A core with AVX-512 BF16
    multiplies bfloat16 at 2.4x the float32 rate (a [5000, 64] x [64, 256] product: 218 against 90 GFLOP/s on
    this machine's EPYC). Features, evaluation and parity run outside it, in float32 as the engine does."""
    return torch.autocast(LOW_PRECISION or 'cpu', dtype=torch.bfloat16, enabled=LOW_PRECISION is not None)


def log(msg):
    if TEAM.rank == 0:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- workers (--workers)

class TEAM:
    """--workers N: N processes of one thread each run every step together. They draw the same batches (same
    seeds), each computes its share of the step's images or sequences, and the gradients are summed between them
    before the (identical) update: the same step as one process makes, up to the order of float sums. Measured on
    the 2-core machine: one process gains nothing from a second thread on tensors this small (50 stage-2 steps took
    13 s at one thread and at two), while two one-thread workers take 1.1-1.5x less time a step."""
    rank, world = 0, 1
    vocab_tables, vocab_rows = (), None  # the decoder's embedding and lm_head, and their rows that can have gradients (the domain's)


def share(items):
    """This worker's part of a step's list (every N-th item: lists sorted by length give each worker a like mix)."""
    return items[TEAM.rank::TEAM.world]


def chunk_bounds(n):
    """Where each worker's contiguous share of a step's n items starts, and the end: [0, ..., n]."""
    return [n * r // TEAM.world for r in range(TEAM.world + 1)]


def chunk(items):
    """This worker's contiguous part of a step's list, and where it starts."""
    bounds = chunk_bounds(len(items))
    lo, hi = bounds[TEAM.rank], bounds[TEAM.rank + 1]
    return items[lo:hi], lo


def reduce_gradients(params, scalars=()):
    """Sums every worker's gradients of `params` (and the floats `scalars`) into every worker; returns the
    scalars' sums. Of a vocabulary-sized table only the domain's rows travel: no other row is ever looked up or
    scored, so their gradients are zero in every worker."""
    if TEAM.world == 1:
        return list(scalars)
    import torch.distributed as dist
    parts, views = [], []
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        g = p.grad
        if any(p is t for t in TEAM.vocab_tables):
            views.append((p, TEAM.vocab_rows))
            parts.append(g[TEAM.vocab_rows].reshape(-1))
        else:
            views.append((p, None))
            parts.append(g.reshape(-1))
    flat = torch.cat(parts + [torch.tensor([float(x) for x in scalars], dtype=torch.float32)])
    dist.all_reduce(flat)
    at = 0
    for (p, rows), part in zip(views, parts):
        n = part.numel()
        if rows is None:
            p.grad.copy_(flat[at: at + n].view_as(p.grad))
        else:
            p.grad[rows] = flat[at: at + n].view(len(rows), -1)
        at += n
    return flat[at:].tolist()


# ----------------------------------------------------------------------------- vision tower (CLIP)

class ClipAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.heads
        q = (self.q_proj(x) * hd ** -0.5).view(b, t, self.heads, hd).transpose(1, 2).reshape(b * self.heads, t, hd)
        k = self.k_proj(x).view(b, t, self.heads, hd).transpose(1, 2).reshape(b * self.heads, t, hd)
        v = self.v_proj(x).view(b, t, self.heads, hd).transpose(1, 2).reshape(b * self.heads, t, hd)
        a = (torch.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1) @ v).view(b, self.heads, t, hd)
        return self.out_proj(a.transpose(1, 2).reshape(b, t, d))


class ClipMlp(nn.Module):
    def __init__(self, d, inner):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, inner), nn.Linear(inner, d)

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(h * torch.sigmoid(1.702 * h))  # quick_gelu


class ClipLayer(nn.Module):
    def __init__(self, d, heads, inner, eps):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.self_attn = ClipAttention(d, heads)
        self.layer_norm2 = nn.LayerNorm(d, eps=eps)
        self.mlp = ClipMlp(d, inner)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class ClipEmbeddings(nn.Module):
    def __init__(self, d, patch, size):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, d, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(d) * 0.02)
        self.position_embedding = nn.Embedding((size // patch) ** 2 + 1, d)
        nn.init.normal_(self.position_embedding.weight, std=0.02)

    def forward(self, pix):
        p = self.patch_embedding(pix).flatten(2).transpose(1, 2)  # [B, N, D]
        cls = self.class_embedding.expand(p.shape[0], 1, -1)
        return torch.cat([cls, p], 1) + self.position_embedding.weight[None]


def sincos_positions(grid, d, scale):
    """2-D sine-cosine position values (half the channels for the column, half for the row; the class token's
    row zero), `scale` times the unit waves: --pos-init sincos starts the learned position embedding here. From the
    default N(0, 0.02) the embedding stays 30x smaller than a patch's content, and after stage 0 a linear probe of
    the features read an object's column third at 41 % (chance 37 %) and its patch column not at all."""
    q = d // 4
    freq = 1.0 / (100.0 ** (torch.arange(q, dtype=torch.float32) / q))
    pos = torch.arange(grid, dtype=torch.float32)[:, None] * freq[None]  # [grid, q]
    wave = torch.cat([pos.sin(), pos.cos()], 1)  # [grid, 2q]
    rows = torch.arange(grid).repeat_interleave(grid)
    cols = torch.arange(grid).repeat(grid)
    table = torch.zeros(grid * grid + 1, d)
    table[1:, : 2 * q] = wave[cols]
    table[1:, 2 * q: 4 * q] = wave[rows]
    return table * scale


class Encoder(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)


class ClipVisionModel(nn.Module):
    def __init__(self, vc):
        super().__init__()
        d, eps = vc['hidden_size'], vc.get('layer_norm_eps', 1e-5)
        self.embeddings = ClipEmbeddings(d, vc['patch_size'], vc['image_size'])
        self.pre_layrnorm = nn.LayerNorm(d, eps=eps)
        self.encoder = Encoder([ClipLayer(d, vc['num_attention_heads'], vc['intermediate_size'], eps) for _ in range(vc['num_hidden_layers'])])
        self.post_layernorm = nn.LayerNorm(d, eps=eps)

    def forward(self, pix, upto=None):
        """hidden_states as transformers lists them: [embeddings after pre-LN, layer 1, ..., layer L] (up to `upto` entries)."""
        h = self.pre_layrnorm(self.embeddings(pix))
        states = [h]
        for layer in self.encoder.layers[: (None if upto is None else upto - 1)]:
            h = layer(h)
            states.append(h)
        return states


class VisionTower(nn.Module):
    def __init__(self, vc):
        super().__init__()
        self.vision_model = ClipVisionModel(vc)


# ----------------------------------------------------------------------------- projector and LLaMA

class Projector(nn.Module):
    def __init__(self, dv, dt):
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(dv, dt), nn.Linear(dt, dt)

    def forward(self, x):
        return self.linear_2(F.gelu(self.linear_1(x)))  # exact erf GELU, as projector_hidden_act "gelu"


class RmsNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        return self.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


class LlamaAttention(nn.Module):
    def __init__(self, d, heads, kv_heads, head_dim=None):
        super().__init__()
        self.heads, self.kv_heads, self.hd = heads, kv_heads, head_dim or d // heads
        self.q_proj = nn.Linear(d, heads * self.hd, bias=False)
        self.k_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(heads * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask, at=None):
        """x [B, T, D] -> [B, T, D]; with `at` = (rows, cols), only those positions' outputs [N, D] (their queries
        alone: the keys and values are every position's)."""
        b, t, _ = x.shape
        k = self.k_proj(x).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        k = k * cos + rotate_half(k) * sin
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, 1)
            v = v.repeat_interleave(self.heads // self.kv_heads, 1)
        if at is not None:
            # each sequence's wanted positions as its own short block of queries [B, H, M, hd] (M: the most any
            # sequence has; the rest padding at position 0), scored against that sequence's keys
            rows, cols = at
            slot = torch.arange(len(rows)) - torch.searchsorted(rows, rows)  # rank of each position within its sequence
            m = int(slot.max()) + 1 if len(rows) else 1
            c, s = cos[0, 0, cols][:, None], sin[0, 0, cols][:, None]
            q = self.q_proj(x[rows, cols]).view(-1, self.heads, self.hd)  # [N, H, hd]
            q = (q * c + rotate_half(q) * s) * self.hd ** -0.5
            block = torch.zeros(b, m, self.heads, self.hd).index_put((rows, slot), q)
            where = torch.zeros(b, m, dtype=torch.long).index_put((rows, slot), cols)
            scores = block.transpose(1, 2) @ k.transpose(-1, -2) + mask[0, where][:, None]  # [B, H, M, T]
            a = (torch.softmax(scores, -1) @ v).transpose(1, 2)[rows, slot]  # [N, H, hd]
            return self.o_proj(a.reshape(len(rows), -1))
        q = self.q_proj(x).view(b, t, self.heads, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        q, k, v = ((q * self.hd ** -0.5).reshape(b * self.heads, t, self.hd), k.reshape(b * self.heads, t, self.hd),
                   v.reshape(b * self.heads, t, self.hd))
        # training: the queries in ATTENTION_CHUNKS bands, each scored against the keys up to its last row only
        # (causal: the rest would be masked), which skips most of the masked half of the score matrix
        chunks = ATTENTION_CHUNKS if torch.is_grad_enabled() and t >= 32 else 1
        parts = []
        for n in range(chunks):
            lo, hi = t * n // chunks, t * (n + 1) // chunks
            s = torch.baddbmm(mask[:, lo:hi, :hi].expand(b * self.heads, hi - lo, hi), q[:, lo:hi], k[:, :hi].transpose(1, 2))
            parts.append(torch.softmax(s, -1) @ v[:, :hi])
        a = (parts[0] if chunks == 1 else torch.cat(parts, 1)).view(b, self.heads, t, self.hd)
        return self.o_proj(a.transpose(1, 2).reshape(b, t, -1))


class LlamaMlp(nn.Module):
    def __init__(self, d, inner):
        super().__init__()
        self.gate_proj = nn.Linear(d, inner, bias=False)
        self.up_proj = nn.Linear(d, inner, bias=False)
        self.down_proj = nn.Linear(inner, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, tc):
        super().__init__()
        d = tc['hidden_size']
        self.self_attn = LlamaAttention(d, tc['num_attention_heads'], tc.get('num_key_value_heads', tc['num_attention_heads']), tc.get('head_dim'))
        self.mlp = LlamaMlp(d, tc['intermediate_size'])
        self.input_layernorm = RmsNorm(d, tc['rms_norm_eps'])
        self.post_attention_layernorm = RmsNorm(d, tc['rms_norm_eps'])

    def forward(self, x, cos, sin, mask, at=None):
        y = x if at is None else x[at]
        y = y + self.self_attn(self.input_layernorm(x), cos, sin, mask, at)
        return y + self.mlp(self.post_attention_layernorm(y))


class LlamaModel(nn.Module):
    def __init__(self, tc):
        super().__init__()
        self.embed_tokens = nn.Embedding(tc['vocab_size'], tc['hidden_size'])
        self.layers = nn.ModuleList([LlamaLayer(tc) for _ in range(tc['num_hidden_layers'])])
        self.norm = RmsNorm(tc['hidden_size'], tc['rms_norm_eps'])
        hd = tc.get('head_dim') or tc['hidden_size'] // tc['num_attention_heads']
        self.register_buffer('inv_freq', 1.0 / (tc.get('rope_theta', 10000.0) ** (torch.arange(0, hd, 2).float() / hd)), persistent=False)
        self.capture_layer, self.captured = 0, None  # --mc-concept: the residual stream after this layer (1-based; 0: none)

    def forward(self, embeds, at=None):
        """Final hidden states [B, T, D]; with `at` = (rows, cols), only those positions' [N, D]: the loss reads
        a few answer positions per sequence, so the last layer computes their queries and MLP rows alone."""
        b, t, _ = embeds.shape
        pos = torch.arange(t, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None]
        emb = torch.cat([freqs, freqs], -1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((t, t), float('-inf')).triu(1)[None]
        h = embeds
        for n, layer in enumerate(self.layers):
            h = layer(h, cos, sin, mask, at if n == len(self.layers) - 1 else None)
            if n + 1 == self.capture_layer:
                self.captured = h
        return self.norm(h)


class LanguageModel(nn.Module):
    def __init__(self, tc):
        super().__init__()
        self.model = LlamaModel(tc)
        self.lm_head = nn.Linear(tc['hidden_size'], tc['vocab_size'], bias=False)


class Llava(nn.Module):
    """State-dict keys are llava-hf's (older transformers layout): vision_tower.vision_model.*, multi_modal_projector.*, language_model.*."""

    def __init__(self, cfg):
        super().__init__()
        vc, tc = cfg['vision_config'], cfg['text_config']
        self.cfg = cfg
        self.vision_tower = VisionTower(vc)
        self.multi_modal_projector = Projector(vc['hidden_size'], tc['hidden_size'])
        self.language_model = LanguageModel(tc)
        for m in self.language_model.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
        if tc.get('tie_word_embeddings'):
            # one table reads the words in and scores them out (as Qwen2-0.5B's): what the decoder would write is then
            # the vector it reads for that word, so an option's word can be matched against the answer it has in mind
            self.language_model.lm_head.weight = self.language_model.model.embed_tokens.weight
        layer = cfg['vision_feature_layer']
        self.feature_states = (vc['num_hidden_layers'] + 1 + layer) + 1 if layer < 0 else layer + 1

    def image_features(self, pix):
        """[B, patches, Dv]: hidden_states[vision_feature_layer] without the class token (strategy default)."""
        states = self.vision_tower.vision_model(pix, upto=self.feature_states)
        return states[-1][:, 1:]


# ----------------------------------------------------------------------------- data

class Data:
    def __init__(self, pack):
        meta = json.load(open(os.path.join(pack, 'images.json')))
        self.size = meta['size']
        self.images = meta['images']
        n = len(self.images)
        pixels = os.path.join(pack, 'pixels.u8')
        # a pack may travel without its pixels (stages 1-2 on another machine read --features instead)
        self.pixels = np.memmap(pixels, dtype=np.uint8, mode='r', shape=(n, self.size, self.size, 3)) if os.path.exists(pixels) else None
        ctx = os.path.join(pack, 'contexts.jsonl')
        self.contexts = read_jsonl(ctx) if os.path.exists(ctx) else None
        # the engine's normalisation, x * rescale_factor (1/255) then (x - mean) / std in float32, of every byte
        # value once: looking the bytes up gives the same floats as computing them (64 images: 30-75 ms against
        # 190 ms), and the tensors it yields are contiguous (a stage-0 dense step went from 0.52 s to 0.19 s)
        x = torch.arange(256, dtype=torch.float32)[None]
        self.table = (((x * (1 / 255)) - torch.tensor(MEAN)[:, None]) / torch.tensor(STD)[:, None]).cpu().numpy()  # [3, 256]
        self.device = x.device  # torch's default device (--device)

    def pix(self, idx):
        if self.pixels is None:
            raise SystemExit('this pack has no pixels.u8: only --features runs of stages 1-2 (vision tower frozen) work without it')
        u8 = np.ascontiguousarray(self.pixels[idx])  # [B, H, W, 3]
        out = np.empty((u8.shape[0], 3) + u8.shape[1:3], dtype=np.float32)
        for c in range(3):
            np.take(self.table[c], u8[..., c], out=out[:, c])
        return torch.from_numpy(out).to(self.device)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def expand(sample, rows):
    """Widens the single <image> id to `rows` positions (as the engine does) and moves the answer spans with it."""
    ids = sample['ids']
    if IMAGE_TOKEN not in ids:
        return ids, sample['spans'], -1
    i = ids.index(IMAGE_TOKEN)
    out = ids[:i] + [IMAGE_TOKEN] * rows + ids[i + 1:]
    spans = [[s + rows - 1, e + rows - 1] if s > i else [s, e] for s, e in sample['spans']]
    return out, spans, i


def batch_tensors(seqs):
    t = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), t, dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s)
    return ids


class DomainVocab:
    """The token ids the data ever shows. lm_head rows of all other ids are zero and stay zero (they get no
    gradient), so each of their logits is exactly 0 and the full-vocabulary softmax needs only the domain's
    rows plus one constant column, log(number of other ids): the same loss at a fiftieth of the cost.
    Greedy decoding through the full lm_head (ONNX) therefore never picks a token the data never showed
    unless no domain token scores above 0."""

    def __init__(self, samples, vocab_size, extra=(2,)):
        ids = set(extra)
        for s in samples:
            ids.update(s['ids'])
        ids.discard(IMAGE_TOKEN)
        self.ids = torch.tensor(sorted(ids))
        self.index = torch.full((vocab_size,), -1, dtype=torch.long)
        self.index[self.ids] = torch.arange(len(self.ids))
        self.rest = math.log(vocab_size - len(self.ids))

    def zero_other_rows(self, lm_head):
        with torch.no_grad():
            keep = torch.zeros(lm_head.weight.shape[0], dtype=torch.bool)
            keep[self.ids] = True
            lm_head.weight[~keep] = 0


def answer_loss(model, hidden, targets, per_sequence=False, denominator=None):
    """Cross-entropy of the answer tokens only: lm_head runs on the positions that predict them, over the domain's rows.
    per_sequence: each sequence weighs the same (the mean of its tokens' losses), however long its answers; else
    every answer token weighs the same (the paper's loss). denominator: the number of sequences (per_sequence) or
    answer tokens of the whole step when these rows are one micro-batch of it (default: these rows alone)."""
    rows, cols, labels = targets
    dv = model.domain
    h = hidden if hidden.dim() == 2 else hidden[rows, cols]  # [N, D]: the decoder ran with at=(rows, cols)
    logits = h @ model.language_model.lm_head.weight[dv.ids].t()
    logits = torch.cat([logits, torch.full((len(labels), 1), dv.rest)], 1)
    each = F.cross_entropy(logits, dv.index[labels], reduction='none')
    if not per_sequence:
        return each.sum() / (denominator or len(labels))
    count = torch.bincount(rows).float()
    return (each / count[rows]).sum() / (denominator or (count > 0).sum())


def micro_batches(lengths, budget):
    """Indices of a step's sequences, shortest first, cut into micro-batches of at most `budget` padded
    attention scores each (count x longest^2). One batch padded to its longest sequence spends most of its time
    on the attention of padding, and its score tensors (batch x heads x T x T) outgrow the caches; micro-batches
    of similar length with the gradients summed give the same step."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out, cur = [], []
    for i in order:
        if cur and (len(cur) + 1) * lengths[i] ** 2 > budget:
            out.append(cur)
            cur = []
        cur.append(i)
    return out + [cur] if cur else out


def targets_of(seqs, spans_list):
    rows, cols, labels = [], [], []
    for r, (s, spans) in enumerate(zip(seqs, spans_list)):
        for a, b in spans:
            for p in range(a, b):
                rows.append(r)
                cols.append(p - 1)
                labels.append(s[p])
    return torch.tensor(rows), torch.tensor(cols), torch.tensor(labels)


# --image-dropout: training steps drop this fraction of the image features' elements (scaled up to keep their mean)
IMAGE_DROPOUT = 0.0


def multimodal_forward(model, seqs, feats_per_seq, image_at, at=None):
    """Embeds, puts each sequence's projected image rows at its image tokens, runs the decoder (to the
    positions `at` = (rows, cols) only, when given)."""
    ids = batch_tensors(seqs)
    emb = model.language_model.model.embed_tokens(ids)
    rows = feats_per_seq.shape[1] if feats_per_seq is not None else 0
    if feats_per_seq is not None:
        if IMAGE_DROPOUT > 0 and torch.is_grad_enabled():
            feats_per_seq = F.dropout(feats_per_seq, IMAGE_DROPOUT, training=True)
        proj = model.multi_modal_projector(feats_per_seq)  # [B, rows, H]
        parts = []
        for r, i in enumerate(image_at):
            if i < 0:
                parts.append(emb[r])
            else:
                parts.append(torch.cat([emb[r, :i], proj[r], emb[r, i + rows:]], 0))
        emb = torch.stack(parts)
    return model.language_model.model(emb, at)


# ----------------------------------------------------------------------------- optimisation

def make_opt(groups, lr, steps, wd=0.01):
    """AdamW over [(params, lr scale)], no decay on vectors; linear warm-up then cosine to 5 %."""
    pg = []
    for params, scale in groups:
        params = [p for p in params if p.requires_grad]
        pg.append({'params': [p for p in params if p.dim() >= 2], 'weight_decay': wd, 'lr': lr * scale})
        pg.append({'params': [p for p in params if p.dim() < 2], 'weight_decay': 0.0, 'lr': lr * scale})
    opt = torch.optim.AdamW([g for g in pg if g['params']], lr=lr, betas=(0.9, 0.98))
    warmup = max(1, steps // 20)

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup)))) * 0.95 + 0.05

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def step_opt(opt, sched, loss, params, clip=1.0, scalars=()):
    """One step on `loss` (this worker's share of the step's loss); returns the whole step's loss and `scalars`,
    summed over the workers."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    return apply_step(opt, sched, params, clip, (float(loss),) + tuple(scalars))


def apply_step(opt, sched, params, clip=1.0, scalars=()):
    """The update from the gradients accumulated since zero_grad (summed over the workers): clipped, then the
    optimiser and schedule step. Returns `scalars` summed over the workers."""
    sums = reduce_gradients([p for p in params if p.requires_grad], scalars)
    torch.nn.utils.clip_grad_norm_([p for p in params if p.requires_grad], clip)
    opt.step()
    sched.step()
    return sums


def set_trainable(module, flag):
    for p in module.parameters():
        p.requires_grad_(flag)


class TextEncoder(nn.Module):
    """Stage 0 only (thrown away): captions -> one vector, for the contrastive loss."""

    def __init__(self, vocab, d, heads, layers, max_len=96):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.layers = nn.ModuleList([ClipLayer(d, heads, 4 * d, 1e-5) for _ in range(layers)])
        self.norm = nn.LayerNorm(d)
        self.max_len = max_len
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.01)

    def forward(self, seqs):
        seqs = [s[: self.max_len] for s in seqs]
        ids = batch_tensors(seqs)
        valid = (torch.arange(ids.shape[1])[None] < torch.tensor([len(s) for s in seqs])[:, None]).float()
        h = self.tok(ids) + self.pos.weight[None, : ids.shape[1]]
        for layer in self.layers:
            h = layer(h)  # padding positions carry zeros-ish; pooled away below
        h = self.norm(h)
        return (h * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)


# ----------------------------------------------------------------------------- stages

COLOURS = ['red', 'green', 'blue', 'yellow', 'orange', 'purple', 'black', 'white']
CLASSES = ['circle', 'square', 'triangle', 'star', 'hexagon', 'box']
SIZES = ['small', 'medium', 'large']


def image_thirds(box, width, height):
    """The third of the image (not of the padded square), across and down (0-2 each), that holds the box centre:
    the place words of the questions ("left / centre / right", "top / middle / bottom"; training/data/spatial.ts)."""
    x1, y1, x2, y2 = box
    return min(2, int((x1 + x2) / 2 / width * 3)), min(2, int((y1 + y2) / 2 / height * 3))


def dense_labels(data, grid, cover=0.0):
    """Per patch of the padded, resized image: the colour and class of the object under it (index 0: background)
    and that object's box in the padded square's 0..1 frame, from the context's boxes (`view_labels` of every
    image as the engine preprocesses it)."""
    return [view_labels(ctx, grid, data.size, cover) for ctx in data.contexts]


def view_labels(ctx, grid, size, cover=0.0, dx=0, dy=0, flip=False):
    """One image's dense labels, its padded and resized pixels mirrored left to right when `flip` (every shape of
    the domain is symmetric about its vertical axis, so classes hold) and then moved `dx`, `dy` pixels of the
    `size`-px input (right and down; 0: as the engine preprocesses it). A patch is the object's when the box holds the patch
    centre; with `cover` > 0 also when the box covers that fraction of the patch or of itself (a shape smaller
    than a patch straddles patch borders and holds few centres or none). The place target (the third of the
    image) moves with the image, so it does not change; the box target does."""
    w, h = ctx['width'], ctx['height']
    side = max(w, h)
    left, top = (side - w) // 2, (side - h) // 2
    objects = ctx['objects']
    if flip:
        objects = [dict(o, box=[w - o['box'][2], o['box'][1], w - o['box'][0], o['box'][3]]) for o in objects]
        left = side - w - left
    # the image's top-left corner in the padded square's pixels, moved with the view
    left, top = left + dx * side / size, top + dy * side / size
    colour = torch.zeros(grid * grid, dtype=torch.long)
    klass = torch.zeros(grid * grid, dtype=torch.long)
    box = torch.zeros(grid * grid, 4)
    size_class = torch.zeros(grid * grid, dtype=torch.long)
    place = torch.full((grid * grid, 2), -100, dtype=torch.long)

    def mark(k, o):
        x1, y1, x2, y2 = o['box']
        place[k, 0], place[k, 1] = image_thirds(o['box'], w, h)
        colour[k] = COLOURS.index(o['colour']) + 1
        klass[k] = CLASSES.index(o['class']) + 1
        size_class[k] = SIZES.index(o['size']) + 1 if o.get('size') in SIZES else -100  # diagram boxes have none
        box[k] = torch.tensor([(x1 + left) / side, (y1 + top) / side, (x2 + left) / side, (y2 + top) / side])

    # each rule in turn over every object, a patch keeping the first object that claims it
    rules = [box_patches(o['box'], left, top, side, grid, cover) for o in objects]
    for n in range(3):
        for o, claims in zip(objects, rules):
            for k in claims[n]:
                if colour[k] == 0:
                    mark(k, o)
    return colour, klass, box, size_class, place


def box_patches(box, left, top, side, grid, cover):
    """The patches (row-major indices) a box claims by view_labels' three rules, in the order they apply: those
    whose centre it holds; the one its centre falls in (a shape smaller than a patch may hold no patch centre;
    none when the centre is out of view); with `cover` > 0, those it covers that fraction of, or that cover that
    fraction of it. `left`, `top`: the image's corner in the padded square of side `side` (pixels)."""
    x1, y1, x2, y2 = box[0] + left, box[1] + top, box[2] + left, box[3] + top
    cell = side / grid
    centres = [r * grid + c for r in range(grid) for c in range(grid)
               if x1 <= (c + 0.5) * cell <= x2 and y1 <= (r + 0.5) * cell <= y2]
    cx, cy = (x1 + x2) / 2 / side, (y1 + y2) / 2 / side
    middle = [min(grid - 1, int(cy * grid)) * grid + min(grid - 1, int(cx * grid))] if 0 <= cx < 1 and 0 <= cy < 1 else []
    covered = []
    if cover > 0:
        area = max(1.0, (x2 - x1) * (y2 - y1))
        for r in range(max(0, int(y1 // cell)), min(grid, int(y2 // cell) + 1)):
            for c in range(max(0, int(x1 // cell)), min(grid, int(x2 // cell) + 1)):
                inter = max(0.0, min(x2, (c + 1) * cell) - max(x1, c * cell)) * max(0.0, min(y2, (r + 1) * cell) - max(y1, r * cell))
                if inter >= cover * cell * cell or inter >= cover * area:
                    covered.append(r * grid + c)
    return centres, middle, covered


def shifted(pix, dx, dy, fill):
    """[3, H, W] normalised pixels moved `dx`, `dy` pixels right and down, the uncovered border filled with `fill`
    ([3, 1, 1]: the pad colour the engine's expand2square uses, normalised)."""
    out = fill.expand_as(pix).clone()
    h, w = pix.shape[1:]
    out[:, max(0, dy): h + min(0, dy), max(0, dx): w + min(0, dx)] = pix[:, max(0, -dy): h - max(0, dy), max(0, -dx): w - max(0, dx)]
    return out


class DenseHeads(nn.Module):
    """Stage 0 only (thrown away): each patch feature predicts the colour and class under it and that object's box."""

    def __init__(self, d, size_weight=0.0, place_weight=0.0):
        super().__init__()
        self.colour = nn.Linear(d, len(COLOURS) + 1)
        self.klass = nn.Linear(d, len(CLASSES) + 1)
        self.box = nn.Linear(d, 4)
        # --dense-size: each patch also names the size class of the object under it (small / medium / large are
        # fractions of the image's shorter side, so in the padded square they depend on its aspect too)
        self.size_weight = size_weight
        self.size = nn.Linear(d, len(SIZES) + 1)
        # --dense-place: each object patch also names the third of the image, across and down, that holds the
        # object's centre (a linear probe of features trained without it reads the column at 41 %, chance 37 %)
        self.place_weight = place_weight
        self.place = nn.Linear(d, 6)

    def loss(self, feats, labels, whole=None):
        """Colour and class cross-entropy with background patches down-weighted (most patches are background,
        and at full weight they drown the class signal: held-out class accuracy stayed at chance), plus the box
        as an L1 on object patches. Class counts double: it is the slowest to learn and every question needs it.
        `whole`: the labels of the whole step when `labels` are one worker's share of it (every mean is then
        over the whole step, so that the workers' losses sum to the one-process loss)."""
        whole = labels if whole is None else whole
        colour, wcolour = (torch.stack([l[0] for l in ls]) for ls in (labels, whole))
        klass, wklass = (torch.stack([l[1] for l in ls]) for ls in (labels, whole))
        box = torch.stack([l[2] for l in labels])
        inside = colour > 0
        wc = torch.tensor([0.2] + [1.0] * len(COLOURS))
        wk = torch.tensor([0.1] + [1.0] * len(CLASSES))
        l = mean_ce(self.colour(feats), colour, wcolour, wc) + 2 * mean_ce(self.klass(feats), klass, wklass, wk)
        if inside.any():
            l = l + 2 * F.l1_loss(torch.sigmoid(self.box(feats))[inside], box[inside], reduction='sum') / (4 * int((wcolour > 0).sum()))
        if self.size_weight > 0:
            size, wsize = (torch.stack([lab[3] for lab in ls]) for ls in (labels, whole))
            ws = torch.tensor([0.1] + [1.0] * len(SIZES))
            l = l + self.size_weight * mean_ce(self.size(feats), size, wsize, ws)
        if self.place_weight > 0:
            place, wplace = (torch.stack([lab[4] for lab in ls]) for ls in (labels, whole))
            logits = self.place(feats)
            l = l + self.place_weight * (mean_ce(logits[..., :3], place[..., 0], wplace[..., 0]) + mean_ce(logits[..., 3:], place[..., 1], wplace[..., 1]))
        return l


def mean_ce(logits, target, whole, weight=None):
    """F.cross_entropy's (weighted) mean over the targets that are not -100, its denominator taken from `whole`
    (the whole step's targets, of which `target` may be one worker's share)."""
    total = F.cross_entropy(logits.flatten(0, -2), target.flatten(), weight=weight, ignore_index=-100, reduction='sum')
    kept = whole[whole != -100]
    return total / (weight[kept].sum() if weight is not None else kept.numel())


def stage0_vision(model, data, args, rng):
    """CLIP-style: image (class token after post-LN, projected) vs caption, InfoNCE both ways."""
    if args.steps0v <= 0:
        return
    vc = model.cfg['vision_config']
    d = vc['hidden_size']
    text = TextEncoder(model.cfg['text_config']['vocab_size'], d, 4, 2)
    vproj = nn.Linear(d, d, bias=False)
    tproj = nn.Linear(d, d, bias=False)
    scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    vm = model.vision_tower.vision_model
    heads = DenseHeads(d)
    params = list(vm.parameters()) + list(text.parameters()) + list(vproj.parameters()) + list(tproj.parameters()) + [scale] + list(heads.parameters())
    opt, sched = make_opt([(params, 1.0)], args.lr0, args.steps0v)
    grid = vc['image_size'] // vc['patch_size']
    labels = dense_labels(data, grid, args.dense_cover) if args.dense > 0 else None
    n = len(data.images)
    t0 = time.time()
    for step in range(args.steps0v):
        idx = sorted(rng.sample(range(n), args.batch0v))
        caps = [rng.choice(data.images[i]['captions']) for i in idx]
        # workers: each runs its contiguous share of the images and captions; the similarity matrix is the whole
        # step's (the others' embeddings gathered without their gradients), so every worker computes the same
        # contrastive loss and its gradient reaches the tower through this worker's own rows only
        mine, lo = chunk(idx)
        with low_precision():
            states = vm(data.pix(mine))
            img = vproj(vm.post_layernorm(states[-1][:, 0]))
            txt = tproj(text(caps[lo: lo + len(mine)]))
        dense = heads.loss(states[model.feature_states - 1][:, 1:].float(), [labels[i] for i in mine], [labels[i] for i in idx]) if labels else torch.zeros(())
        img = gather_rows(F.normalize(img.float(), dim=-1), lo, len(idx))
        txt = gather_rows(F.normalize(txt.float(), dim=-1), lo, len(idx))
        logits = scale.exp().clamp(max=100) * img @ txt.t()
        # images sharing a caption text are not negatives of each other
        same = torch.tensor([[a == b for b in caps] for a in caps], dtype=torch.bool)
        logits_i = logits.masked_fill(same & ~torch.eye(len(idx), dtype=torch.bool), float('-inf'))
        target = torch.arange(len(idx))
        contrast = (F.cross_entropy(logits_i, target) + F.cross_entropy(logits_i.t(), target)) / 2
        opt.zero_grad(set_to_none=True)
        (contrast + args.dense * dense).backward()
        scale.grad /= TEAM.world  # the temperature's gradient is the whole loss's in every worker, not a share
        dense_sum, = apply_step(opt, sched, params, scalars=(float(dense),))
        if step % 25 == 0 or step == args.steps0v - 1:
            acc = (logits_i.argmax(1) == target).float().mean().item()
            log(f"stage 0 vision {step}/{args.steps0v} contrastive {contrast.item():.3f} acc {acc:.2f} dense {dense_sum:.3f} ({time.time() - t0:.0f} s)")


def gather_rows(mine, lo, n):
    """The whole step's rows [n, D] from every worker's share, this worker's own rows (from `lo`) keeping their
    gradient; the others' are values only (their workers carry their gradients)."""
    if TEAM.world == 1:
        return mine
    import torch.distributed as dist
    bounds = chunk_bounds(n)
    sizes = [bounds[r + 1] - bounds[r] for r in range(TEAM.world)]
    assert bounds[TEAM.rank] == lo and sizes[TEAM.rank] == len(mine)
    # all_gather wants equal sizes: every share padded to the largest
    padded = [torch.zeros(max(sizes), mine.shape[1]) for _ in sizes]
    own = torch.zeros(max(sizes), mine.shape[1])
    own[: len(mine)] = mine.detach()
    dist.all_gather(padded, own)
    rows = [padded[r][: sizes[r]] for r in range(TEAM.world)]
    rows[TEAM.rank] = mine
    return torch.cat(rows)


def stage0_dense(model, data, args, rng):
    """Stage 0, second part: the vision tower alone on the dense objective (each patch: the colour and class of
    the object under it and that object's box), with fresh heads. The contrastive part leaves patch features
    that know colour but not shape (held-out class accuracy at chance); 2,000 steps of this lift class to about
    81 % and colour to 95 %, and only then can a decoder find "the circle" among 64 image tokens."""
    if args.steps0d <= 0:
        return
    vc = model.cfg['vision_config']
    vm = model.vision_tower.vision_model
    heads = DenseHeads(vc['hidden_size'], args.dense_size, args.dense_place)
    grid = vc['image_size'] // vc['patch_size']
    labels = None if args.dense_shift > 0 else dense_labels(data, grid, args.dense_cover)  # moved views: per step
    params = list(vm.parameters()) + list(heads.parameters())
    opt, sched = make_opt([(params, 1.0)], args.lr0d, args.steps0d)
    # expand2square's pad colour (bytes of the mean), normalised
    fill = torch.tensor([(int(m * 255) / 255 - m) / sd for m, sd in zip(MEAN, STD)])[:, None, None]
    t0 = time.time()
    for step in range(args.steps0d):
        idx = sorted(rng.sample(range(len(data.images)), args.batch0v))
        if args.dense_shift > 0:
            # --dense-shift: every image seen moved by up to that many pixels each way, so that a small shape
            # meets the patch grid at a new offset each time (its labels recomputed for the moved view)
            # --dense-flip: and half of them mirrored left to right
            moves = [(rng.randint(-args.dense_shift, args.dense_shift), rng.randint(-args.dense_shift, args.dense_shift),
                      args.dense_flip and rng.random() < 0.5) for _ in idx]
            views = [view_labels(data.contexts[i], grid, data.size, args.dense_cover, dx, dy, flip) for i, (dx, dy, flip) in zip(idx, moves)]
            mine, lo = chunk(idx)
            pix = data.pix(mine)
            for b, (dx, dy, flip) in enumerate(moves[lo: lo + len(mine)]):
                pix[b] = shifted(pix[b].flip(2) if flip else pix[b], dx, dy, fill)
            mine_labels, whole_labels = views[lo: lo + len(mine)], views
        else:
            mine, _ = chunk(idx)
            pix = data.pix(mine)
            mine_labels, whole_labels = [labels[i] for i in mine], [labels[i] for i in idx]
        with low_precision():
            feats = vm(pix, upto=model.feature_states)[-1][:, 1:]
        loss, = step_opt(opt, sched, heads.loss(feats.float(), mine_labels, whole_labels), params)
        if step % 100 == 0 or step == args.steps0d - 1:
            log(f"stage 0 dense {step}/{args.steps0d} loss {loss:.3f} ({time.time() - t0:.0f} s)")


def stage0_text(model, stage2, args, rng):
    """The decoder as a language model on the data's text (conversations without their image)."""
    lm = model.language_model
    params = list(lm.parameters())
    opt, sched = make_opt([(params, 1.0)], args.lr0, args.steps0t)
    t0 = time.time()
    for step in range(args.steps0t):
        batch = [rng.choice(stage2) for _ in range(args.batch0t)]
        seqs = [[t for t in s['ids'] if t != IMAGE_TOKEN] for s in batch]
        mine, _ = chunk(seqs)
        with low_precision():
            hidden = lm.model(lm.model.embed_tokens(batch_tensors(mine))).float()
        spans = [[[1, len(s)]] for s in mine]  # every token after BOS
        loss = answer_loss(model, hidden, targets_of(mine, spans), denominator=sum(len(s) - 1 for s in seqs))
        loss, = step_opt(opt, sched, loss, params)
        if step % 50 == 0 or step == args.steps0t - 1:
            log(f"stage 0 text {step}/{args.steps0t} loss {loss:.3f} ({time.time() - t0:.0f} s)")


@torch.no_grad()
def all_features(model, data, batch=64):
    out = []
    for s in range(0, len(data.images), batch):
        out.append(model.image_features(data.pix(list(range(s, min(len(data.images), s + batch))))))
    return torch.cat(out)


def frozen_features(model, data):
    """all_features, computed once while the vision tower stays frozen (stages 1 and 2 call it per part), or the
    --features file's when given (computed from these same weights by --dump-features)."""
    if getattr(model, 'given_features', None) is not None:
        return model.given_features
    key = (id(data), sum(float(p.detach().sum()) for p in model.vision_tower.parameters()))
    if getattr(model, '_features', (None,))[0] != key:
        model._features = (key, all_features(model, data))
    return model._features[1]


def by_image(samples):
    groups = {}
    for s in samples:
        groups.setdefault(s['img'], []).append(s)
    return groups


def mc_options(ids, vocab):
    """A multiple-choice prompt's options before its image: {the answer letter's token ("\u2581B") -> the option's
    word ids}, or {} when the prompt has no image or no "\nB. words\n" lines."""
    if IMAGE_TOKEN not in ids:
        return {}
    newline, dot = vocab['<0x0A>'], vocab['.']
    letters = {vocab[c]: vocab['\u2581' + c] for c in 'ABCDEFGHIJ'}
    image = ids.index(IMAGE_TOKEN)
    options = {}
    for p in range(image):
        if ids[p] == newline and ids[p + 1] in letters and ids[p + 2] == dot and newline in ids[p + 3:image + 1]:
            end = ids.index(newline, p + 3)
            options[letters[ids[p + 1]]] = ids[p + 3:end]
    return options


def option_lookups(samples, vocab, after_image=False):
    """--lookup: the multiple-choice samples as a text task, the right option's words written where the image
    was ("...A. blue / B. red / Answer with the option's letter... / red ASSISTANT: B"). Multiple choice is a
    lookup the image answer then feeds: find the option that holds a word, answer with its letter. The 32-wide
    decoder did not learn that from image questions (with the answer stated in a Context line it still picked
    the right letter 46 % of the time, chance 42), but learns it as text in a few hundred steps. Each item keeps
    its sample's `img`, so it rides in any step: unused without an image token, or (after_image, --lookup-image)
    the image kept and the words after it."""
    out = []
    for s in samples:
        ids = s['ids']
        if len(s['spans']) != 1:
            continue
        options = mc_options(ids, vocab)
        a, b = s['spans'][0]
        words = options.get(ids[a])
        if not words:
            continue
        image = ids.index(IMAGE_TOKEN)
        if after_image:  # the image stays and the words follow it: the options sit as far back as in a real question
            shift, new = len(words), ids[:image + 1] + words + ids[image + 1:]
        else:
            shift, new = len(words) - 1, ids[:image] + words + ids[image + 1:]
        out.append({'img': s['img'], 'ids': new, 'spans': [[a + shift, b + shift]], 'kind': 'lookup'})
    return out


class McConcept:
    """--mc-concept W (stage 2, departing from the paper): for a multiple-choice sample, the residual stream of
    the position that writes the letter, after decoder layer K (--mc-concept-layer), is asked to point at the
    right option's words: cross-entropy over the question's own options of the cosine between that residual and
    each option's mean input embedding (held fixed), x10. Multiple choice is two hops, what the image shows and
    then which option says it; the decoder learns the second as text (option_lookups) but, asked for the letter
    alone, stays on the last letter offered. This puts the first hop's answer, in the options' own terms, half
    way up the decoder, where the second can read it."""

    def __init__(self, weight, layer, vocab, distill=False):
        self.weight, self.layer, self.vocab, self.distill = weight, layer, vocab, distill

    def annotate(self, samples):
        """Marks each single-answer multiple-choice sample with `concept`: (its options' word ids, the right one's index)."""
        n = 0
        for s in samples:
            if 'concept' in s or len(s['spans']) != 1:
                continue
            options = mc_options(s['ids'], self.vocab)
            right = options.get(s['ids'][s['spans'][0][0]])
            if right:
                words = list(options.values())
                ids, image, a = s['ids'], s['ids'].index(IMAGE_TOKEN), s['spans'][0][0]
                # --mc-distill: the text lookup of the same question (the right words where the image was) and
                # the position there that writes the letter
                twin = ids[:image] + right + ids[image + 1:]
                s['concept'] = (words, words.index(right), twin, a + len(right) - 2)
                n += 1
        return n

    def loss(self, model, states, spans, batch, denominator):
        """Summed over this micro-batch's multiple-choice rows, divided by the whole step's count of them."""
        if self.distill:
            return self.distill_loss(model, states, spans, batch, denominator)
        table = model.language_model.model.embed_tokens.weight.detach()
        total = states.new_zeros(())
        for r, (sp, s) in enumerate(zip(spans, batch)):
            if 'concept' not in s:
                continue
            words, right = s['concept'][:2]
            keys = F.normalize(torch.stack([table[w].mean(0) for w in words]), dim=-1)
            query = F.normalize(states[r, sp[0][0] - 1], dim=-1)
            total = total + F.cross_entropy((keys @ query)[None] * 10.0, torch.tensor([right]))
        return self.weight * total / denominator

    def distill_loss(self, model, states, spans, batch, denominator):
        """--mc-distill: the same residual asked to equal (squared error over the teacher's mean square) the one
        the model itself has, without gradient, at the same layer and position when it reads the question as its
        text lookup, which the decoder learns (option_lookups): the image's answer in the lookup's own terms."""
        rows = [r for r, s in enumerate(batch) if 'concept' in s]
        if not rows:
            return states.new_zeros(())
        student = torch.stack([states[r, spans[r][0][0] - 1] for r in rows])
        lm = model.language_model.model
        with torch.no_grad():
            twins = [batch[r]['concept'][2] for r in rows]
            lm(lm.embed_tokens(batch_tensors(twins)))
            teacher = lm.captured[torch.arange(len(rows)), torch.tensor([batch[r]['concept'][3] for r in rows])]
            lm.captured = None
        each = ((student - teacher) ** 2).mean(-1) / (teacher ** 2).mean(-1)
        return self.weight * each.sum() / denominator


class ProjectorDense:
    """--proj-dense W (stages 1-2, departing from the paper): the stage-0 dense targets (colour, class, box, size
    class and third of the image of the object under each patch) asked again of the projector's output, the 32
    numbers per patch the decoder reads, through fresh heads that are thrown away. Stage 2's colour and shape
    phases train position out of the projector: linear probes of run R's read the column third at 92 % after stage
    1 and 74 % at its end (box centre error 0.044 -> 0.103 of the side; the tower's own features: 95 %, 0.029)."""

    def __init__(self, model, data, weight, cover):
        vc = model.cfg['vision_config']
        self.heads = DenseHeads(model.cfg['text_config']['hidden_size'], 1.0, 1.0)
        self.labels = dense_labels(data, vc['image_size'] // vc['patch_size'], cover)
        self.weight = weight

    def loss(self, model, feats, used):
        return self.weight * self.heads.loss(model.multi_modal_projector(feats), [self.labels[i] for i in used])


class AboutRows:
    """--about-rows W (stage 2, departing from the paper): in a single-turn sample the question comes before the
    image (our chat template), so each image row can read what is asked; this asks the rows, after decoder layer K
    (--about-layer), to say whether their patch belongs to an object the question is about (`about` in
    stage2a.jsonl, from the data's facts: the named object, both objects of a relation, every star for "how many
    stars", none for an absent one), through a fresh linear head that is thrown away. The answer's loss is one or
    two tokens per sequence and has to find that lookup by itself; this names its first step directly."""

    def __init__(self, model, data, weight, layer, cover, init='random'):
        vc = model.cfg['vision_config']
        self.grid, self.size, self.cover = vc['image_size'] // vc['patch_size'], data.size, cover
        self.contexts, self.cache = data.contexts, {}
        self.head = nn.Linear(model.cfg['text_config']['hidden_size'], 1)
        if init == 'zero':
            # drawn first all the same, so the run's later random draws do not move; at zero the head's first
            # steps send no gradient into the decoder (a random head's did, loss 1.1-2.3) until it reads something
            with torch.no_grad():
                self.head.weight.zero_()
                self.head.bias.zero_()
        self.weight, self.layer = weight, layer

    def target(self, sample):
        """[rows] floats: 1 where the patch is one of an `about` object's (made once per image and object set)."""
        key = (sample['img'], tuple(sample['about']))
        if key not in self.cache:
            patches = object_patches(self.contexts[key[0]], self.grid, self.size, self.cover)
            t = torch.zeros(self.grid * self.grid)
            for i in key[1]:
                t[patches[i]] = 1.0
            self.cache[key] = t
        return self.cache[key]

    def loss(self, states, image_at, rows, batch, denominator):
        """Summed over this micro-batch's samples with `about`, divided by the whole step's count of them; each
        sample's positive and negative patches weigh half each (an object covers a few of the 64; with none, every
        patch weighs the same)."""
        mine = [r for r, s in enumerate(batch) if 'about' in s]
        if not mine:
            return states.new_zeros(())
        at = torch.tensor([image_at[r] for r in mine])[:, None] + torch.arange(rows)[None]
        h = states[torch.tensor(mine)[:, None], at]  # [n, rows, D]
        t = torch.stack([self.target(batch[r]) for r in mine])
        pos = t.sum(1, keepdim=True)
        w = torch.where(pos > 0, torch.where(t > 0, 0.5 / pos.clamp(min=1), 0.5 / (rows - pos).clamp(min=1)), torch.full_like(t, 1.0 / rows))
        each = F.binary_cross_entropy_with_logits(self.head(h)[..., 0], t, reduction='none')
        return self.weight * (each * w).sum() / denominator


class SubjectRows(AboutRows):
    """--subject-rows W (stage 2, departing from the paper): AboutRows marks both objects of a relation ("Is the
    red star to the left of the blue circle?") alike, so a position that attends to the marked rows reads both
    places mixed and cannot compare them. This second thrown-away head, on the same layer, marks the object the
    question names first (the subject; `about` keeps the question's order) against every other patch, in the
    position questions about two objects only (a count's objects have no order): the reference is then the rows
    marked about and not subject."""

    def loss(self, states, image_at, rows, batch, denominator):
        return super().loss(states, image_at, rows, [dict(s, about=s['about'][:1]) if relation(s) else {} for s in batch], denominator)


def relation(sample):
    """A position question about two objects (--subject-rows)."""
    return sample.get('topic') == 'position' and len(sample.get('about', ())) == 2


def object_patches(ctx, grid, size, cover):
    """Per object of the context, every patch its box claims by view_labels' rules (box_patches), each object on
    its own (view_labels gives a patch to one object only)."""
    w, h = ctx['width'], ctx['height']
    side = max(w, h)
    return [sorted(set().union(*box_patches(o['box'], (side - w) // 2, (side - h) // 2, side, grid, cover))) for o in ctx['objects']]


PROJECTOR_DENSE = None
TOPIC_WEIGHT = {}
KIND_WEIGHT = {}
MC_CONCEPT = None
ABOUT_ROWS = None
SUBJECT_ROWS = None

# --qat4: the candidates of the converter's `--q4-scales search` (src/convert/quantize.ts SEARCH_CODES), as the code
# a block's extreme value would get
Q4_SEARCH_CODES = (-9.6, -9.4, -9.2, -9.0, -8.8, -8.6, -8.4, -8.2, -8.0, -7.8, -7.6, 6.6, 6.8, 7.0, 7.2, 7.4)


def fake_q4(w, block):
    """The weight `llava convert --dtype q4 --q4-scales search --q4-block BLOCK` stores for w [N, K], as floats:
    each row cut into blocks of BLOCK along K, each block's scale the least-squares one over the search
    candidates, codes -8..7. Forward: those values; backward: the gradient passes as if unrounded (straight-
    through), so that training moves the weights to where rounding costs least."""
    n, k = w.shape
    with torch.no_grad():
        x = F.pad(w, (0, (-k) % block)).view(n, -1, block)  # [N, B, block]
        extreme = x.gather(-1, x.abs().argmax(-1, keepdim=True))  # [N, B, 1], sign kept
        safe = torch.where(extreme == 0, torch.ones_like(extreme), extreme)
        codes = torch.tensor(Q4_SEARCH_CODES, dtype=w.dtype, device=w.device)
        q = torch.clamp(torch.round(x[..., None, :] * (codes[:, None] / safe[..., None])), -8, 7)  # [N, B, 16, block]
        swq, sqq = (x[..., None, :] * q).sum(-1), (q * q).sum(-1)  # [N, B, 16]
        err = torch.where(sqq > 0, (x * x).sum(-1, keepdim=True) - swq * swq / sqq.clamp_min(1e-30), torch.full_like(sqq, math.inf))
        # an all-zero block: every candidate's error is inf, its scale 0 and its codes 0
        scale = (swq / sqq.clamp_min(1e-30)).gather(-1, err.argmin(-1, keepdim=True))  # [N, B, 1]
        y = x / torch.where(scale == 0, torch.ones_like(scale), scale)
        deq = (torch.clamp(torch.sign(y) * torch.floor(y.abs() + 0.5), -8, 7) * scale).view(n, -1)[:, :k]  # C's roundf
    return w + (deq - w).detach()


def quantization_aware(modules, block):
    """--qat4: every nn.Linear under `modules` computes with fake_q4 of its weight from now on."""
    count = 0
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Linear):
                m.forward = (lambda lin: lambda x: F.linear(x, fake_q4(lin.weight, block), lin.bias))(m)
                count += 1
    return count


def run_multimodal(model, data, samples, steps, lr, images_per_step, params, rng, label, tune_vision=False, vision_lr_scale=1.0, per_sequence=False, extra=(), extra_per_step=0,
                   captions=(), captions_per_step=0, lookups=(), lookups_per_step=0):
    """Each step: every sample of `images_per_step` images (an epoch's shuffled order), plus `extra_per_step`
    samples drawn from `extra` (stage 2 keeps the opening part's single-turn questions in its mixture),
    `captions_per_step` drawn from `captions` (stage 1's brief captions, --captions2) and `lookups_per_step` from
    `lookups` (text-only option lookups, --lookup2)."""
    by_img = by_image(samples)
    keys = sorted(by_img)
    feats_all = None if tune_vision else frozen_features(model, data)
    aux = PROJECTOR_DENSE
    # --topic-weight, --kind-weight: single-turn samples drawn in proportion to their topic's weight times their
    # kind's (default: uniform, and the draws below the same as before the flags existed)
    weighted = (TOPIC_WEIGHT or KIND_WEIGHT) and extra
    cum = list(itertools.accumulate(TOPIC_WEIGHT.get(s.get('topic'), 1.0) * KIND_WEIGHT.get(s.get('kind'), 1.0) for s in extra)) if weighted else None
    if aux is not None:
        params = list(params) + list(aux.heads.parameters())
    if ABOUT_ROWS is not None:
        params = list(params) + list(ABOUT_ROWS.head.parameters())
    if SUBJECT_ROWS is not None:
        params = list(params) + list(SUBJECT_ROWS.head.parameters())
    groups = [(params, 1.0)]
    if tune_vision:
        vparams = [p for p in model.vision_tower.parameters() if p.requires_grad]
        groups.append((vparams, vision_lr_scale))
        params = list(params) + vparams
    opt, sched = make_opt(groups, lr, steps)
    budget = MICRO_BATCH_SCORES // model.language_model.model.layers[0].self_attn.heads  # scores per head
    if feats_all is not None and feats_all.is_cuda:
        budget = 1 << 40  # a GPU's caches are not the limit; one launch per step is
    t0 = time.time()
    order = []
    for step in range(steps):
        if len(order) < images_per_step:
            order = keys[:]
            rng.shuffle(order)
        imgs, order = order[:images_per_step], order[images_per_step:]
        batch = [s for img in imgs for s in by_img[img]]
        if cum:
            batch += rng.choices(extra, cum_weights=cum, k=extra_per_step)
        elif extra:
            batch += [extra[rng.randrange(len(extra))] for _ in range(extra_per_step)]
        if captions:
            batch += [captions[rng.randrange(len(captions))] for _ in range(captions_per_step)]
        if lookups:
            batch += [lookups[rng.randrange(len(lookups))] for _ in range(lookups_per_step)]
        used = sorted({s['img'] for s in batch})
        feats = model.image_features(data.pix(used)) if tune_vision else feats_all[used]
        where = {img: r for r, img in enumerate(used)}
        rows = feats.shape[1]
        seqs, spans, at, fidx = [], [], [], []
        for s in batch:
            ids, sp, i = expand(s, rows)
            seqs.append(ids)
            spans.append(sp)
            at.append(i)
            fidx.append(where[s['img']])
        answers = [sum(b - a for a, b in sp) for sp in spans]
        denominator = sum(1 for n in answers if n) if per_sequence else sum(answers)
        concepts = sum(1 for s in batch if 'concept' in s) if MC_CONCEPT is not None else 0
        abouts = sum(1 for s in batch if 'about' in s) if ABOUT_ROWS is not None else 0
        subjects = sum(1 for s in batch if relation(s)) if SUBJECT_ROWS is not None else 0
        opt.zero_grad(set_to_none=True)
        loss = concept_loss = about_loss = subject_loss = 0.0
        # workers: every N-th sequence by length, so that each gets a like share of short and long ones
        mine = share(sorted(range(len(seqs)), key=lambda i: len(seqs[i])))
        for part in micro_batches([len(seqs[i]) for i in mine], budget):
            part = [mine[j] for j in part]
            if not any(answers[i] for i in part):
                continue
            targets = targets_of([seqs[i] for i in part], [spans[i] for i in part])
            with low_precision():
                hidden = multimodal_forward(model, [seqs[i] for i in part], feats[[fidx[i] for i in part]], [at[i] for i in part], targets[:2]).float()
            part_loss = answer_loss(model, hidden, targets, per_sequence, denominator)
            if concepts:
                part_concept = MC_CONCEPT.loss(model, model.language_model.model.captured, [spans[i] for i in part],
                                               [batch[i] for i in part], concepts)
                concept_loss += float(part_concept)
                part_loss = part_loss + part_concept
            if abouts:
                part_about = ABOUT_ROWS.loss(model.language_model.model.captured, [at[i] for i in part], rows, [batch[i] for i in part], abouts)
                about_loss += float(part_about)
                part_loss = part_loss + part_about
            if subjects:
                part_subject = SUBJECT_ROWS.loss(model.language_model.model.captured, [at[i] for i in part], rows, [batch[i] for i in part], subjects)
                subject_loss += float(part_subject)
                part_loss = part_loss + part_subject
            part_loss.backward()
            loss += float(part_loss)
        aux_loss = 0.0
        if aux is not None and TEAM.rank == 0:
            aux_part = aux.loss(model, feats, used)
            aux_part.backward()
            aux_loss = float(aux_part)
        loss, aux_loss, concept_loss, about_loss, subject_loss = apply_step(opt, sched, params, scalars=(loss, aux_loss, concept_loss, about_loss, subject_loss))
        dense = f' projector dense {aux_loss:.3f}' if aux is not None else ''
        dense += f' (mc concept {concept_loss:.3f})' if concepts else ''
        dense += f' (about rows {about_loss:.3f})' if abouts else ''
        dense += f' (subject rows {subject_loss:.3f})' if subjects else ''
        if step % 25 == 0 or step == steps - 1:
            log(f"{label} {step}/{steps} loss {loss:.3f}{dense} seqs {len(seqs)} ({time.time() - t0:.0f} s)")


# ----------------------------------------------------------------------------- safetensors

def save_safetensors(model, path, metadata):
    """The model's weights with llava-hf names. The first worker writes; the others hold the same weights."""
    if TEAM.rank != 0:
        return
    tensors = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items() if not k.endswith('inv_freq')}
    write_safetensors(path, tensors, {'format': 'pt', **metadata})


def write_safetensors(path, tensors, metadata=None):
    """numpy arrays by name as one F32 safetensors file (u64 header length, JSON header, raw little-endian data),
    written beside `path` and moved into place."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name], dtype='<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    hj = json.dumps(header, separators=(',', ':')).encode()
    hj += b' ' * ((8 - len(hj) % 8) % 8)
    tmp = path + '.partial'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path, prefix=''):
    """The F32 tensors of `path` whose names start with `prefix`, keyed by the rest of the name."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        state = {}
        for name, info in header.items():
            if name == '__metadata__' or not name.startswith(prefix):
                continue
            s, e = info['data_offsets']
            f.seek(base + s)
            state[name[len(prefix):]] = torch.from_numpy(np.frombuffer(f.read(e - s), dtype='<f4').copy()).view(info['shape'])
    return state


def load_safetensors(model, path, only=None):
    """Loads every tensor of `path` (all of the model's must be there), or with `only` those whose names start with it."""
    state = {(only or '') + k: v for k, v in read_safetensors(path, only or '').items()}
    head, table = 'language_model.lm_head.weight', 'language_model.model.embed_tokens.weight'
    tied = model.language_model.lm_head.weight is model.language_model.model.embed_tokens.weight
    if tied and head in state and table in state:
        # tied: one table, and load_state_dict would keep whichever name it copies last; an untied checkpoint's
        # embedding table is the one kept, said in the log
        if not torch.equal(state[head], state[table]):
            log(f'{path}: untied lm_head dropped; the tied table starts from its embed_tokens')
        del state[head]
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not (tied and m == head)]
    missing = [m for m in missing if not m.endswith('inv_freq') and (not only or m.startswith(only))]
    if missing or unexpected:
        raise SystemExit(f"{path}: missing {missing} unexpected {unexpected}")


# ----------------------------------------------------------------------------- greedy decoding (parity)

@torch.no_grad()
def greedy(model, data, img, ids, max_new, eos=2):
    """Greedy tokens for one prompt (ids already expanded as the engine builds them), recomputing the prefix each step."""
    feats = model.image_features(data.pix([img])) if img is not None else None
    i = ids.index(IMAGE_TOKEN) if IMAGE_TOKEN in ids else -1
    seq = list(ids)
    out = []
    for _ in range(max_new):
        emb = model.language_model.model.embed_tokens(torch.tensor([seq]))
        if i >= 0:
            rows = feats.shape[1]
            emb = torch.cat([emb[:, :i], model.multi_modal_projector(feats), emb[:, i + rows:]], 1)
        h = model.language_model.model(emb)
        tok = int(model.language_model.lm_head(h[0, -1]).argmax())
        out.append(tok)
        if tok == eos:
            break
        seq.append(tok)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--pack', required=True)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--steps0v', type=int, default=400)
    ap.add_argument('--batch0v', type=int, default=96)
    ap.add_argument('--dense', type=float, default=1.0, help='weight of the dense auxiliary loss in stage 0 (each patch: colour, class and box of the object under it; 0: contrastive only)')
    ap.add_argument('--dense-cover', type=float, default=0.0, help='dense labels: a patch is also an object\'s when its box covers this fraction of the patch or of the box (0: patch centres only)')
    ap.add_argument('--dense-size', type=float, default=0.0, help='stage 0 dense part: weight of a size-class target per patch (small / medium / large; 0: none)')
    ap.add_argument('--dense-place', type=float, default=0.0, help='stage 0 dense part: weight of a place target per object patch (the third of the image across and down holding the object\'s centre; 0: none)')
    ap.add_argument('--pos-init', choices=['normal', 'sincos'], default='normal', help='stage 0 from scratch: the vision position embedding\'s initial values (sincos: 2-D sine-cosine waves, see --pos-scale)')
    ap.add_argument('--pos-scale', type=float, default=0.5, help='--pos-init sincos: the waves\' amplitude')
    ap.add_argument('--dense-shift', type=int, default=0, help='stage 0 dense part: move each image by up to this many input pixels each way (labels recomputed), so that shapes meet the patch grid at every offset (0: off)')
    ap.add_argument('--dense-flip', action='store_true', help='with --dense-shift: mirror half the images left to right as well')
    ap.add_argument('--steps0d', type=int, default=0, help='stage 0, second part: steps of the vision tower alone on the dense objective')
    ap.add_argument('--lr0d', type=float, default=2e-3)
    ap.add_argument('--steps0t', type=int, default=600)
    ap.add_argument('--batch0t', type=int, default=64)
    ap.add_argument('--lr0', type=float, default=2e-3)
    ap.add_argument('--steps1', type=int, default=300)
    ap.add_argument('--lr1', type=float, default=2e-3)
    ap.add_argument('--steps2', type=int, default=3000)
    ap.add_argument('--lr2', type=float, default=1e-3)
    ap.add_argument('--images2', type=int, default=4, help='images per stage-2 step (all of their samples go in)')
    ap.add_argument('--steps2a', type=int, default=0, help='stage 2 opens with this many steps on single-turn samples (stage2a.jsonl) of --kinds2a alone (0: none)')
    ap.add_argument('--kinds2a', default='short,mc,vqa', help='sample kinds of that opening part (pack.ts `kind`)')
    ap.add_argument('--first2a', default='colour', help='phases (;) of topics (,) the opening part starts with, each alone: "colour;colour,shape" (pack.ts `topic`)')
    ap.add_argument('--first2a-steps', default='', help='steps of each --first2a phase: "700,500" (empty: none)')
    ap.add_argument('--batch2a', type=int, default=48, help='single-turn samples per step of the opening part (drawn at random)')
    ap.add_argument('--lr2a', type=float, default=2e-3)
    ap.add_argument('--captions2', type=int, default=0, help='stage 2 (the full mixture) also draws this many of stage 1\'s brief captions into each step (stage 2\'s own data has none)')
    ap.add_argument('--lookup-steps', type=int, default=0, help='stage 2 opens with this many steps of --batch2a text-only option lookups (option_lookups; before --first2a)')
    ap.add_argument('--lookup-image', action='store_true', help='option lookups keep their image, the right option\'s words after it (RoPE: the options as far from the answer as in a real question)')
    ap.add_argument('--lookup2', type=int, default=0, help='every later stage-2 step also draws this many text-only option lookups (keeps what --lookup-steps taught)')
    ap.add_argument('--qat4', type=int, default=0, help='stage 2: the projector\'s and decoder layers\' linear weights compute as `llava convert --dtype q4 --q4-scales search --q4-block N` stores them (fake_q4, straight-through gradients; 0: off). lm_head stays f32 in the q4 graph')
    ap.add_argument('--mc-concept', type=float, default=0.0, help='stage 2: weight of the multiple-choice concept loss (McConcept: the letter position\'s residual after --mc-concept-layer names the right option; 0: off)')
    ap.add_argument('--about-rows', type=float, default=0.0, help='stage 2: weight of the about-rows loss (AboutRows: after --about-layer each image row of a single-turn sample says whether its patch belongs to an object the question is about; 0: off)')
    ap.add_argument('--about-layer', type=int, default=2, help='--about-rows: the decoder layer (1-based) whose output the about-rows head reads')
    ap.add_argument('--about-captions', action='store_true', help='--about-rows: the --captions2 lead captions (stage2c) ask it too, about the largest object they name (pack.ts passes their `about`); off: their `about` is ignored')
    ap.add_argument('--about-init', default='random', choices=['random', 'zero'], help='--about-rows: the head\'s start in each command (random: nn.Linear\'s draw, as run Z; zero: no gradient into the decoder until the head has learned)')
    ap.add_argument('--subject-rows', type=float, default=0.0, help='stage 2: weight of the subject-rows loss (SubjectRows: a second head on the --about-layer rows marks the object a position question about two objects names first; needs --about-rows; 0: off)')
    ap.add_argument('--mc-distill', action='store_true', help='--mc-concept: ask for the residual the model has at that layer when it reads the question as a text lookup (McConcept.distill_loss) instead of the right option\'s embedding')
    ap.add_argument('--mc-concept-layer', type=int, default=3, help='--mc-concept: the decoder layer (1-based, below the last) whose output is asked')
    ap.add_argument('--captions2-from', default='stage1', choices=['stage1', 'stage2c'], help='the pack file --captions2 draws from: stage1 (the brief captions) or stage2c (the lead captions, one per image that the picture decides)')
    ap.add_argument('--single2', type=int, default=0, help='stage 2 (the full mixture) also draws this many of the opening part\'s single-turn samples into each step')
    ap.add_argument('--loss2', choices=['token', 'sequence'], default='token', help='stage 2 loss: every answer token weighs the same (the paper) or every sequence does')
    ap.add_argument('--tune-vision', type=float, default=0.3, help='stage 2 also tunes the vision tower at this fraction of the learning rate (0: frozen, as the paper)')
    ap.add_argument('--from-stage', type=int, default=0, help='resume: load DIR/stage<N-1>.safetensors and start at stage N')
    ap.add_argument('--stop-after', type=int, default=2, help='stop after this stage (its weights are in the pack as stage<N>.safetensors)')
    ap.add_argument('--init-vision', help='stage 0: start the vision tower from this checkpoint\'s vision_tower.* tensors (with --steps0v 0 --steps0d 0: a new decoder size over a tower already trained)')
    ap.add_argument('--init', help='with --from-stage: start from these weights instead of stage<N-1>.safetensors (e.g. a longer stage 2)')
    ap.add_argument('--parity', help='JSONL of {img, ids, max_new}: write greedy tokens of the trained model to stdout instead of training')
    ap.add_argument('--parity-pack', help='pack folder (images-only) whose pixels the parity prompts index')
    ap.add_argument('--device', default='cpu', help='torch device for stages 1-2 (cuda on a GPU machine; stage 0 is run and checked on the CPU only)')
    ap.add_argument('--dump-features', help='with --from-stage 1 or 2: write the frozen vision tower\'s features of every pack image to this .npy (float16) and stop')
    ap.add_argument('--features', help='.npy from --dump-features: stages 1-2 read these instead of running the tower over pixels.u8')
    ap.add_argument('--bf16', type=int, default=0, help='1: training forward passes under bfloat16 autocast (mixed precision: weights, gradients and optimiser in float32; features, evaluation and parity in float32)')
    ap.add_argument('--image-dropout', type=float, default=0.0, help='stages 1-2: drop this fraction of the image features\' elements in training steps (a regulariser against memorising each image\'s features)')
    ap.add_argument('--kind-weight', default='', help='stage 2: as --topic-weight, by sample kind (pack.ts `kind`), e.g. "mcq=0.25"; the two multiply')
    ap.add_argument('--topic-weight', default='', help='stage 2: draw single-turn samples by topic in these proportions, e.g. "ground=5" (others 1; default uniform over samples)')
    ap.add_argument('--proj-dense', type=float, default=0.0, help='stages 1-2: weight of the stage-0 dense targets asked of the projector\'s output (fresh heads, thrown away; 0: off)')
    ap.add_argument('--out', help='folder for the stage and phase weights and train-log.json (default: the pack; the final weights stay ckpt/model.safetensors)')
    ap.add_argument('--workers', type=int, default=1, help='processes that share every step (one thread each unless --threads is larger; gradients summed between them: the same steps as one process); the recipe uses 2 on 2 cores')
    args = ap.parse_args()
    if args.workers > 1 and not (args.parity or args.dump_features):
        if args.device != 'cpu':
            raise SystemExit('--workers: CPU only (on a GPU one process is the fast way)')
        import socket
        import torch.multiprocessing as mp
        with socket.socket() as sock:  # a free port for the workers to meet on
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        mp.spawn(worker, args=(args, port), nprocs=args.workers)
        return
    run(args)


def worker(rank, args, port):
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=args.workers)
    TEAM.rank, TEAM.world = rank, args.workers
    args.threads = max(1, args.threads // args.workers)
    try:
        run(args)
    finally:
        dist.destroy_process_group()


def weights(text):
    """"ground=5,count=4" -> {'ground': 5.0, 'count': 4.0} (--topic-weight, --kind-weight); '' -> {}."""
    return {k: float(w) for k, w in (kv.split('=') for kv in text.split(','))} if text else {}


def run(args):
    global IMAGE_DROPOUT, PROJECTOR_DENSE, TOPIC_WEIGHT, KIND_WEIGHT, MC_CONCEPT, ABOUT_ROWS, SUBJECT_ROWS, LOW_PRECISION
    IMAGE_DROPOUT = args.image_dropout
    LOW_PRECISION = torch.device(args.device).type if args.bf16 else None
    TOPIC_WEIGHT, KIND_WEIGHT = weights(args.topic_weight), weights(args.kind_weight)

    torch.set_num_threads(args.threads)
    if args.device != 'cpu':
        if args.from_stage < 1 and not args.parity:
            raise SystemExit('--device: stage 0 runs on the CPU (use --from-stage 1 or 2)')
        torch.set_default_device(args.device)  # torch >= 2.0: every tensor the stages make is born there
    out = args.out or args.pack
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    ckpt = os.path.join(args.pack, 'ckpt')
    cfg = json.load(open(os.path.join(ckpt, 'config.json')))
    model = Llava(cfg)

    if args.parity:
        load_safetensors(model, os.path.join(ckpt, 'model.safetensors'))
        model.eval()
        pdata = Data(args.parity_pack)
        for item in read_jsonl(args.parity):
            print(json.dumps({'tokens': greedy(model, pdata, item['img'], item['ids'], item['max_new'])}), flush=True)
        return

    data = Data(args.pack)
    stage1 = read_jsonl(os.path.join(args.pack, 'stage1.jsonl'))
    stage2 = read_jsonl(os.path.join(args.pack, 'stage2.jsonl'))
    model.domain = DomainVocab(stage1 + stage2, cfg['text_config']['vocab_size'])
    model.domain.zero_other_rows(model.language_model.lm_head)
    # the embedding's other rows too: never looked up, so no gradient, and weight decay keeps a zero at zero; all-zero
    # rows let `llava convert` store both vocabulary tables sparse (~300 of 32,064 rows: 0.11 bytes per element)
    model.domain.zero_other_rows(model.language_model.model.embed_tokens)
    TEAM.vocab_tables, TEAM.vocab_rows = (model.language_model.model.embed_tokens.weight, model.language_model.lm_head.weight), model.domain.ids
    log(f"domain vocabulary: {len(model.domain.ids)} of {cfg['text_config']['vocab_size']} token ids")
    log(f"{len(data.images)} images, stage 1: {len(stage1)} samples, stage 2: {len(stage2)} samples; "
        f"{sum(p.numel() for p in model.parameters()):,} parameters; {args.threads} threads")
    started = time.time()
    times = {}
    if args.init or args.from_stage > 0:
        load_safetensors(model, args.init or os.path.join(args.pack, f'stage{args.from_stage - 1}.safetensors'))
    if args.dump_features:
        if args.from_stage < 1:
            raise SystemExit('--dump-features needs --from-stage 1 or 2 (the tower is trained in stage 0)')
        np.save(args.dump_features, all_features(model, data).cpu().numpy().astype(np.float16))
        log(f"features of {len(data.images)} images: {args.dump_features}")
        return
    if args.features:
        f = np.load(args.features)
        if f.shape[0] != len(data.images):
            raise SystemExit(f"--features: {f.shape[0]} rows for {len(data.images)} images")
        model.given_features = torch.from_numpy(f.astype(np.float32)).to(args.device)

    if args.dense_flip and args.dense_shift <= 0:
        raise SystemExit('--dense-flip goes with --dense-shift (the moved views are where it applies)')
    if args.pos_init != 'normal' and (args.init_vision or args.from_stage > 0):
        raise SystemExit('--pos-init applies to a tower trained from scratch (stage 0 without --init-vision)')
    if args.from_stage <= 0:
        t = time.time()
        if args.init_vision:
            load_safetensors(model, args.init_vision, only='vision_tower.')
        elif args.pos_init == 'sincos':
            vc = cfg['vision_config']
            emb = model.vision_tower.vision_model.embeddings.position_embedding
            with torch.no_grad():
                emb.weight.copy_(sincos_positions(vc['image_size'] // vc['patch_size'], vc['hidden_size'], args.pos_scale))
        stage0_vision(model, data, args, rng)
        stage0_dense(model, data, args, rng)
        stage0_text(model, stage2, args, rng)
        times['stage0'] = time.time() - t
        save_safetensors(model, os.path.join(out, 'stage0.safetensors'), {'stage': 0})
        if args.stop_after == 0:
            log(f"stage 0 done in {times['stage0']:.0f} s")
            return
    if args.qat4:
        if args.from_stage < 2:
            raise SystemExit('--qat4: stage 2 only (with --from-stage 2)')
        n = quantization_aware([model.multi_modal_projector, model.language_model.model.layers], args.qat4)
        log(f"quantization-aware (q4, blocks of {args.qat4}): {n} linear layers of the projector and decoder")
    if args.proj_dense > 0:
        PROJECTOR_DENSE = ProjectorDense(model, data, args.proj_dense, args.dense_cover)
    if args.from_stage <= 1:
        t = time.time()
        set_trainable(model, False)
        set_trainable(model.multi_modal_projector, True)
        run_multimodal(model, data, stage1, args.steps1, args.lr1, 16, list(model.multi_modal_projector.parameters()), rng, 'stage 1 (projector)')
        times['stage1'] = time.time() - t
        save_safetensors(model, os.path.join(out, 'stage1.safetensors'), {'stage': 1})
        if args.stop_after == 1:
            return
    t = time.time()
    set_trainable(model, False)
    set_trainable(model.multi_modal_projector, True)
    set_trainable(model.language_model, True)
    tune = args.tune_vision > 0
    if tune:
        set_trainable(model.vision_tower, True)
    params = list(model.multi_modal_projector.parameters()) + list(model.language_model.parameters())
    per_seq = args.loss2 == 'sequence'
    opening = []
    if args.steps2a > 0 or args.single2 > 0 or args.first2a_steps:
        kinds = set(args.kinds2a.split(','))
        single = os.path.join(args.pack, 'stage2a.jsonl')
        if not os.path.exists(single):
            raise SystemExit(f"--steps2a needs {single} (pack.ts writes it; repack with --samples-only)")
        opening = [s for s in read_jsonl(single) if s['kind'] in kinds]
        if not opening:
            raise SystemExit(f"--steps2a: no sample of kinds {sorted(kinds)} in {single}")
    # the tokenizer's vocabulary, read once for the flags that parse multiple-choice prompts
    vocab = json.load(open(os.path.join(ckpt, 'tokenizer.json')))['model']['vocab'] if args.lookup_steps > 0 or args.lookup2 > 0 or args.mc_concept > 0 else None
    lookups = []
    if args.lookup_steps > 0 or args.lookup2 > 0:
        lookups = option_lookups([s for s in read_jsonl(os.path.join(args.pack, 'stage2a.jsonl')) if s['kind'] in ('mc', 'mcq')], vocab, args.lookup_image)
        if not lookups:
            raise SystemExit('--lookup-steps/--lookup2: no multiple-choice sample in stage2a.jsonl')
        log(f"option lookups: {len(lookups)}")
    if args.lookup_steps > 0:
        run_multimodal(model, data, [], args.lookup_steps, args.lr2a, 0, params, rng, 'stage 2, option lookup (text)', per_sequence=True,
                       extra=lookups, extra_per_step=args.batch2a)
    more = dict(lookups=lookups, lookups_per_step=args.lookup2)
    if args.mc_concept > 0:
        if not 1 <= args.mc_concept_layer < len(model.language_model.model.layers):
            raise SystemExit(f'--mc-concept-layer: 1 to {len(model.language_model.model.layers) - 1} (the last layer runs on the answer positions alone)')
        MC_CONCEPT = McConcept(args.mc_concept, args.mc_concept_layer, vocab, args.mc_distill)
        model.language_model.model.capture_layer = args.mc_concept_layer
        log(f"mc concept: {MC_CONCEPT.annotate(opening) + MC_CONCEPT.annotate(stage2)} multiple-choice samples")
    if args.about_rows > 0:
        if not 1 <= args.about_layer < len(model.language_model.model.layers):
            raise SystemExit(f'--about-layer: 1 to {len(model.language_model.model.layers) - 1} (the last layer runs on the answer positions alone)')
        if args.mc_concept > 0 and args.mc_concept_layer != args.about_layer:
            raise SystemExit('--about-rows with --mc-concept: one captured layer (--about-layer = --mc-concept-layer)')
        ABOUT_ROWS = AboutRows(model, data, args.about_rows, args.about_layer, args.dense_cover, args.about_init)
        model.language_model.model.capture_layer = args.about_layer
        log(f"about rows: {sum(1 for s in opening if 'about' in s)} of {len(opening)} single-turn samples say what they are about")
    if args.subject_rows > 0:
        if ABOUT_ROWS is None:
            raise SystemExit('--subject-rows: only with --about-rows (it reads the same layer)')
        SUBJECT_ROWS = SubjectRows(model, data, args.subject_rows, args.about_layer, args.dense_cover, args.about_init)
        log(f"subject rows: {sum(1 for s in opening if relation(s))} single-turn position questions name two objects")
    captions2 = () if not args.captions2 else stage1 if args.captions2_from == 'stage1' else read_jsonl(os.path.join(args.pack, f'{args.captions2_from}.jsonl'))
    if args.about_captions:
        if ABOUT_ROWS is None:
            raise SystemExit('--about-captions: only with --about-rows')
        log(f"about rows: {sum(1 for c in captions2 if 'about' in c)} of {len(captions2)} captions say which object they name")
    else:
        # a lead caption's `about` (its largest object) feeds the about-rows loss only when asked; without the flag a
        # pack that has it trains exactly as one made before it existed
        captions2 = [{k: v for k, v in c.items() if k != 'about'} for c in captions2]
    outside = {t for c in captions2 for t in c['ids'] if t != IMAGE_TOKEN and model.domain.index[t] < 0}
    if outside:
        raise SystemExit(f"--captions2-from {args.captions2_from}: token ids {sorted(outside)[:10]} are in no stage-1 or stage-2 sample (the vocabulary the model can write)")
    phases = []
    if args.first2a_steps:
        names, counts = args.first2a.split(';'), [int(n) for n in args.first2a_steps.split(',')]
        if len(names) != len(counts):
            raise SystemExit(f"--first2a has {len(names)} phases, --first2a-steps {len(counts)} step counts")
        phases = list(zip(names, counts))
    for n, (phase, steps) in enumerate(phases):
        topics = set(phase.split(','))
        first = [s for s in opening if s.get('topic') in topics]
        if not first:
            raise SystemExit(f"--first2a: no single-turn sample of topics {sorted(topics)} (pack.ts writes `topic`)")
        run_multimodal(model, data, [], steps, args.lr2a, 0, params, rng, f'stage 2a, first ({phase})', tune_vision=tune, vision_lr_scale=args.tune_vision, per_sequence=True,
                       extra=first, extra_per_step=args.batch2a, **more)
        # each phase's weights, so that a curriculum can be evaluated phase by phase (llava convert + llava eval)
        save_safetensors(model, os.path.join(out, f'stage2a-phase{n + 1}.safetensors'), {'stage': f'2a phase {n + 1}: {phase}'})
    if args.steps2a > 0:
        run_multimodal(model, data, [], args.steps2a, args.lr2a, 0, params, rng, f'stage 2a ({args.kinds2a})', tune_vision=tune, vision_lr_scale=args.tune_vision, per_sequence=True,
                       extra=opening, extra_per_step=args.batch2a, **more)
        save_safetensors(model, os.path.join(out, 'stage2a.safetensors'), {'stage': '2a'})
    run_multimodal(model, data, stage2, args.steps2, args.lr2, args.images2, params, rng, 'stage 2 (instruction tuning)', tune_vision=tune, vision_lr_scale=args.tune_vision, per_sequence=per_seq,
                   extra=opening, extra_per_step=args.single2, captions=captions2, captions_per_step=args.captions2, **more)
    times['stage2'] = time.time() - t
    meta = {'recipe': ' '.join(sys.argv[1:]), 'seed': args.seed, **{f'seconds_{k}': round(v) for k, v in times.items()}}
    save_safetensors(model, os.path.join(ckpt if out == args.pack else out, 'model.safetensors'), meta)
    if TEAM.rank == 0:
        json.dump({'seconds': round(time.time() - started), **times, 'domainTokens': len(model.domain.ids), 'torch': torch.__version__, 'args': vars(args)}, open(os.path.join(out, 'train-log.json'), 'w'), indent=2)
    log(f"done in {time.time() - started:.0f} s: {ckpt if out == args.pack else out}/model.safetensors")


if __name__ == '__main__':
    main()
