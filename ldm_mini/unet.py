"""eps_theta(z_t, t, tau_theta(y)): the time-conditional UNet with cross-attention (paper, Sec. 3.3).

    z_t --conv_in--> [ResBlock (+ SpatialTransformer)] x num_res_blocks, Downsample   } per level
                     middle: ResBlock, SpatialTransformer, ResBlock
                     [ResBlock on cat(h, skip) (+ SpatialTransformer)] x (num_res_blocks + 1), Upsample
                --GroupNorm-SiLU-conv_out--> eps (same shape as z_t)

Conditioning, the two ways of the paper:
- cross-attention (text): inside each SpatialTransformer, Q = W_Q phi(z_t) comes from the UNet's
  features, K = W_K tau_theta(y) and V = W_V tau_theta(y) from the caption's tokens (Eq. 3);
- concatenation (super-resolution): extra channels are stacked on z_t before the first conv.

Three layers start at exactly zero (ResBlock's last conv, SpatialTransformer.proj_out, the final
conv), as in the reference code: every block starts as the identity and a fresh UNet outputs 0.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from .layers import Downsample, Upsample, unet_norm, zero_module

__all__ = [
    "UNetConfig", "UNet", "timestep_embedding", "ResBlock", "SpatialTransformer",
    "BasicTransformerBlock", "CrossAttention", "FeedForward",
]


@dataclass
class UNetConfig:
    in_channels: int = 4                        # c of the latent z (3 for a pixel-space model, f = 1)
    out_channels: int = 4                       # eps has the shape of z_t
    model_channels: int = 64                    # width of level 0; level i has model_channels * channel_mult[i]
    # one entry per resolution: len - 1 halvings (use (1, 2) for 2x2 latents)
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1                     # ResBlocks per level going down (going up has one more)
    # levels (0 = full resolution) with a SpatialTransformer; the middle always has one
    attention_levels: tuple[int, ...] = (1, 2)
    num_heads: int = 4                          # attention heads; head dim = level width / num_heads
    transformer_depth: int = 1                  # BasicTransformerBlocks per SpatialTransformer
    context_dim: int = 64                       # width of the tokens tau_theta(y)
    use_context: bool = True                    # False: no cross-attention (unconditional / concat-only model)
    # extra input channels concatenated to z_t (super-resolution: the low-res image)
    concat_channels: int = 0
    dropout: float = 0.0                        # in ResBlocks and transformer blocks

    def __post_init__(self):
        self.channel_mult = tuple(self.channel_mult)
        self.attention_levels = tuple(self.attention_levels)
        n = len(self.channel_mult)
        if n < 1:
            raise ValueError("channel_mult needs at least one level, e.g. (1, 2, 2)")
        bad = [lvl for lvl in self.attention_levels if not 0 <= lvl < n]
        if bad:
            raise ValueError(
                f"attention_levels {bad} out of range: channel_mult={self.channel_mult} has levels 0..{n - 1}"
            )
        for lvl in (*self.attention_levels, n - 1):    # the middle block runs at the last level's width
            width = self.model_channels * self.channel_mult[lvl]
            if width % self.num_heads:
                raise ValueError(f"level {lvl} width {width} is not divisible by num_heads={self.num_heads}")

    @property
    def downsample_factor(self) -> int:
        """How much the deepest level is smaller than the input: 2 ** (len(channel_mult) - 1)."""
        return 2 ** (len(self.channel_mult) - 1)


# ---------------------------------------------------------------------------- building blocks
def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of the timestep, cos first as in the reference code: cat[cos(t w), sin(t w)].

    t: (b,) integer or float timesteps -> (b, dim) float32; frequencies w_k = max_period^(-k / (dim/2)).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]                         # b half
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)     # b (2 half)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv, + projected time embedding, GroupNorm-SiLU-Dropout-Conv(zero), + skip."""

    def __init__(self, in_channels: int, out_channels: int, temb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.in_layers = nn.Sequential(
            unet_norm(in_channels), nn.SiLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(temb_dim, out_channels))
        self.out_layers = nn.Sequential(unet_norm(out_channels), nn.SiLU(), nn.Dropout(dropout),
                                        zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1)))
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)                                  # b c_out h w
        h = h + self.emb_layers(temb)[:, :, None, None]        # the timestep shifts every channel
        return self.skip(x) + self.out_layers(h)


class CrossAttention(nn.Module):
    """Multi-head attention softmax(Q K^T / sqrt(d)) V; Q from x, K and V from `context` (or from x: self-attention).

    Set `.record = True` (or use UNet.record_attention()) to keep the attention probabilities in
    `.last_attn` (b, heads, n_query, n_key); they are then computed explicitly instead of by the
    fused scaled_dot_product_attention.
    """

    def __init__(self, query_dim: int, context_dim: int | None = None, heads: int = 4, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.is_cross = context_dim is not None
        kv_dim = context_dim if context_dim is not None else query_dim
        self.to_q = nn.Linear(query_dim, query_dim, bias=False)
        self.to_k = nn.Linear(kv_dim, query_dim, bias=False)
        self.to_v = nn.Linear(kv_dim, query_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(query_dim, query_dim), nn.Dropout(dropout))
        self.record = False
        self.last_attn = None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: b n d; context: b m d_ctx; mask: b m, True for real tokens, False for padding
        context = x if context is None else context
        q, k, v = (rearrange(p, "b n (heads d) -> b heads n d", heads=self.heads)
                   for p in (self.to_q(x), self.to_k(context), self.to_v(context)))
        attn_mask, has_token = None, None
        if mask is not None:
            mask = mask.bool()
            has_token = mask.any(dim=1)                      # b; False for an all-padding caption
            # an all-padding row would softmax over nothing (NaN): let it attend anywhere, zero it below
            attn_mask = (mask | ~has_token[:, None])[:, None, None, :]   # b 1 1 m
        if self.record:
            attn = _softmax_attention(q, k, attn_mask)       # b heads n m
            self.last_attn = attn.detach() if has_token is None else attn.detach() * has_token[:, None, None, None]
            out = attn @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        out = self.to_out(rearrange(out, "b heads n d -> b n (heads d)"))
        if has_token is not None:
            out = out * has_token[:, None, None].to(out.dtype)    # an empty caption adds nothing
        return out


    def attention_probs(self, x: torch.Tensor, context: torch.Tensor | None = None,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
        """softmax(Q K^T / sqrt(d)) WITH gradients (what ``record`` keeps, detached): x (b n d),
        context (b m d_ctx), mask (b m) -> (b, heads, n, m). Attention guidance steers z_t with it."""
        context = x if context is None else context
        q, k = (
            rearrange(p, "b n (heads d) -> b heads n d", heads=self.heads) for p in (self.to_q(x), self.to_k(context))
        )
        return _softmax_attention(q, k, None if mask is None else mask.bool()[:, None, None, :])


def _softmax_attention(q: torch.Tensor, k: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d)) over the keys: q (b heads n d), k (b heads m d) -> (b heads n m);
    keys where attn_mask (broadcast to b heads n m) is False get no weight."""
    sim = torch.einsum("bhnd,bhmd->bhnm", q, k) / math.sqrt(q.shape[-1])
    if attn_mask is not None:
        sim = sim.masked_fill(~attn_mask, float("-inf"))
    return sim.softmax(dim=-1)


class FeedForward(nn.Module):
    """GEGLU feed-forward: (x W1) * GELU(x W2), then a projection back (Shazeer 2020)."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        inner = dim * mult
        self.proj_in = nn.Linear(dim, 2 * inner)
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, gate = self.proj_in(x).chunk(2, dim=-1)
        return self.net(h * F.gelu(gate))


class BasicTransformerBlock(nn.Module):
    """Pre-LayerNorm block: x += SelfAttn(LN x); x += CrossAttn(LN x, context); x += FF(LN x)."""

    def __init__(self, dim: int, heads: int, context_dim: int | None, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.attn1 = nn.LayerNorm(dim), CrossAttention(dim, None, heads, dropout)
        self.attn2 = CrossAttention(dim, context_dim, heads, dropout) if context_dim is not None else None
        self.norm2 = nn.LayerNorm(dim) if context_dim is not None else None
        self.norm3, self.ff = nn.LayerNorm(dim), FeedForward(dim, dropout=dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x))
        if self.attn2 is not None:
            x = x + self.attn2(self.norm2(x), context, context_mask)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """Lets every pixel of a feature map attend to the other pixels and to the caption's tokens.

    GroupNorm, flatten the h*w pixels to tokens, proj_in, transformer blocks, proj_out (zero), residual.
    """

    def __init__(self, channels: int, heads: int, context_dim: int | None, depth: int = 1, dropout: float = 0.0):
        super().__init__()
        self.norm = unet_norm(channels)
        self.proj_in = nn.Linear(channels, channels)
        self.blocks = nn.ModuleList(BasicTransformerBlock(channels, heads, context_dim, dropout) for _ in range(depth))
        self.proj_out = zero_module(nn.Linear(channels, channels))
        self.last_hw = None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        self.last_hw = (h, w)
        tokens = self.proj_in(rearrange(self.norm(x), "b c h w -> b (h w) c"))
        for block in self.blocks:
            tokens = block(tokens, context, context_mask)
        return x + rearrange(self.proj_out(tokens), "b (h w) c -> b c h w", h=h, w=w)


class UNetBlock(nn.ModuleList):
    """A sequence of layers; each gets the inputs it needs (ResBlock: temb; SpatialTransformer: context)."""

    def forward(self, x, temb, context=None, context_mask=None):
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, temb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context, context_mask)
            else:
                x = layer(x)
        return x


# ---------------------------------------------------------------------------- the UNet
class UNet(nn.Module):
    """eps_theta(z_t, t, context): predicts the noise in z_t. See UNetConfig for the knobs."""

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        self.config = c = config if config is not None else UNetConfig()
        mc, temb_dim = c.model_channels, 4 * c.model_channels
        ctx_dim = c.context_dim if c.use_context else None

        def transformer(ch):
            return SpatialTransformer(ch, c.num_heads, ctx_dim, c.transformer_depth, c.dropout)

        self.time_embed = nn.Sequential(nn.Linear(mc, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim))
        self.conv_in = nn.Conv2d(c.in_channels + c.concat_channels, mc, 3, padding=1)

        # down path: remember every block's output width, for the skip connections
        self.down = nn.ModuleList()
        skip_channels, ch = [mc], mc
        for level, mult in enumerate(c.channel_mult):
            for _ in range(c.num_res_blocks):
                layers = [ResBlock(ch, mult * mc, temb_dim, c.dropout)]
                ch = mult * mc
                if level in c.attention_levels:
                    layers.append(transformer(ch))
                self.down.append(UNetBlock(layers))
                skip_channels.append(ch)
            if level < len(c.channel_mult) - 1:
                self.down.append(UNetBlock([Downsample(ch)]))
                skip_channels.append(ch)

        self.middle = UNetBlock([ResBlock(ch, ch, temb_dim, c.dropout), transformer(ch),
                                 ResBlock(ch, ch, temb_dim, c.dropout)])

        # up path: each block eats one skip (concatenated on channels); one more block per level than going down
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(c.channel_mult))):
            for i in range(c.num_res_blocks + 1):
                layers = [ResBlock(ch + skip_channels.pop(), mult * mc, temb_dim, c.dropout)]
                ch = mult * mc
                if level in c.attention_levels:
                    layers.append(transformer(ch))
                if level > 0 and i == c.num_res_blocks:
                    layers.append(Upsample(ch))
                self.up.append(UNetBlock(layers))

        self.out = nn.Sequential(unet_norm(ch), nn.SiLU(), zero_module(nn.Conv2d(ch, c.out_channels, 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None, concat: torch.Tensor | None = None) -> torch.Tensor:
        """x: z_t (b, c, h, w); t: (b,) timesteps (an int or 0-d tensor is broadcast);
        context: tau_theta(y) (b, n, context_dim); context_mask: (b, n), True for real tokens, False
        for padding; concat: (b, concat_channels, h, w). Returns eps (b, out_channels, h, w)."""
        t = self._check_inputs(x, t, context, context_mask, concat)
        if concat is not None:
            x = torch.cat([x, concat], dim=1)                                # b (c + c_concat) h w
        temb = self.time_embed(timestep_embedding(t, self.config.model_channels).to(x.dtype))   # b 4mc
        h = self.conv_in(x)                                                  # b mc h w
        skips = [h]
        for block in self.down:
            h = block(h, temb, context, context_mask)
            skips.append(h)
        h = self.middle(h, temb, context, context_mask)                      # b ch h/2^L w/2^L
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=1), temb, context, context_mask)
        return self.out(h)                                                   # b out_channels h w

    def _check_inputs(self, x, t, context, context_mask, concat) -> torch.Tensor:
        c = self.config
        if x.ndim != 4 or x.shape[1] != c.in_channels:
            raise ValueError(f"x must be (b, {c.in_channels}, h, w), got {tuple(x.shape)}")
        b, _, h, w = x.shape
        k = c.downsample_factor
        if h % k or w % k:
            raise ValueError(f"latent size {h}x{w} cannot be halved {len(c.channel_mult) - 1} times "
                             f"(channel_mult={c.channel_mult}); use a shorter channel_mult, e.g. "
                             f"{c.channel_mult[:max(1, len(c.channel_mult) - 1)]}, or a latent size divisible by {k}")
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(b)
        if t.shape != (b,):
            raise ValueError(f"t must have shape ({b},), got {tuple(t.shape)}")
        if c.use_context:
            if context is None:
                raise ValueError("this UNet has cross-attention (use_context=True): pass context = tau_theta(y) "
                                 "of shape (b, n, context_dim), or build it with UNetConfig(use_context=False)")
            if context.ndim != 3 or context.shape[0] != b or context.shape[2] != c.context_dim:
                raise ValueError(f"context must be ({b}, n, {c.context_dim}), got {tuple(context.shape)}")
            if context_mask is not None and context_mask.shape != context.shape[:2]:
                raise ValueError(f"context_mask must be {tuple(context.shape[:2])}, got {tuple(context_mask.shape)}")
        elif context is not None:
            raise ValueError("this UNet has no cross-attention (use_context=False) but got a context")
        if c.concat_channels:
            if concat is None or concat.shape != (b, c.concat_channels, h, w):
                got = None if concat is None else tuple(concat.shape)
                raise ValueError(f"concat must be ({b}, {c.concat_channels}, {h}, {w}), got {got}; "
                                 "resize the conditioning image to the latent size first")
        elif concat is not None:
            raise ValueError("got concat but the UNet was built with concat_channels=0")
        return t

    # ------------------------------------------------------------------ attention maps for the lessons
    @contextmanager
    def record_attention(self):
        """Within this block every cross-attention layer keeps its map softmax(Q K^T / sqrt(d)).

        with unet.record_attention():
            unet(z_t, t, context)
        maps = unet.attention_maps()    # {layer name: (b, heads, h, w, tokens)}
        """
        layers = [m for m in self.modules() if isinstance(m, CrossAttention) and m.is_cross]
        for m in layers:
            m.record, m.last_attn = True, None
        try:
            yield self
        finally:
            for m in layers:
                m.record = False

    def attention_maps(self) -> dict[str, torch.Tensor]:
        """The cross-attention maps recorded by the last forward pass, as (b, heads, h, w, tokens)."""
        maps = {}
        for name, st in self.named_modules():
            if not isinstance(st, SpatialTransformer):
                continue
            for j, block in enumerate(st.blocks):
                if block.attn2 is not None and block.attn2.last_attn is not None:
                    maps[f"{name}.blocks.{j}.attn2"] = rearrange(
                        block.attn2.last_attn, "b heads (h w) n -> b heads h w n", h=st.last_hw[0])
        return maps

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
