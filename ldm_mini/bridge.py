"""ldm_mini <-> Hugging Face diffusers: our LDM as a Stable Diffusion folder, and back.

Stable Diffusion *is* a latent diffusion model (the paper's LDM, scaled up): the same three parts
under other names.

    ldm_mini                          diffusers / Stable Diffusion
    Autoencoder (E, D), KL-reg        AutoencoderKL            (OUT/vae)
    UNet eps_theta(z_t, t, context)   UNet2DConditionModel     (OUT/unet)
    NoiseSchedule + DDIM              DDIMScheduler            (OUT/scheduler)
    Tokenizer, TextEncoder tau_theta  CLIPTokenizer, CLIPTextModel (OUT/tokenizer, OUT/text_encoder: ours)

``export_to_diffusers(ldm, out_dir)`` writes that folder; ``load_pipeline(out_dir)`` builds diffusers'
own ``StableDiffusionPipeline`` from it; ``load_from_diffusers(unet_dir, vae_dir)`` goes the other
way. Weights are renamed one to one; nothing is retrained or approximated, except where diffusers'
classes cannot express a detail of ours. Those details (all stored in the exported config.json under
``_ldm_mini_exact``, which diffusers ignores; ``load_unet`` / ``load_vae`` apply them):

- GroupNorm groups: diffusers uses one ``norm_num_groups`` for a whole model; our autoencoder keeps
  4 channels per group (8 groups at width 32, 16 at width 64), so layers of other widths get their
  group count set after loading.
- The GroupNorm in front of each SpatialTransformer: diffusers hard-codes eps = 1e-6, ours is 1e-5.
- The encoder's stride-2 convolution: diffusers pads right and bottom only (as the reference code),
  ours pads one pixel on every side.

Loaded with plain ``from_pretrained`` (without those fixes) the models still run; lesson 11
measures how far they drift. The reverse direction refuses, naming the field, any diffusers config
that no ldm_mini config reproduces.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .autoencoder import Autoencoder, AutoencoderConfig
from .ldm import LatentDiffusion, LDMConfig
from .sampling import ddim_timesteps
from .text import TextEncoder, TextEncoderConfig, Tokenizer
from .unet import UNet, UNetConfig

EXACT_KEY = "_ldm_mini_exact"  # private config key: diffusers drops keys that start with "_"


def _need_diffusers():
    try:
        import diffusers
    except ImportError as error:  # pragma: no cover - the dev extra installs it
        raise ImportError(
            'the diffusers bridge needs diffusers: pip install "diffusers>=0.30,<1" transformers'
        ) from error
    return diffusers


# ============================================================================ configs, ours -> theirs
def unet_config_to_diffusers(c: UNetConfig, sample_size: int) -> dict:
    """The UNet2DConditionModel config with our architecture (levels with attention get Cross* blocks)."""
    bad = {}
    if not c.use_context:
        bad["use_context"] = "False: a UNet without cross-attention has no UNet2DConditionModel counterpart"
    if c.concat_channels:
        bad["concat_channels"] = (
            f"{c.concat_channels}: concatenation conditioning (super-resolution) "
            "is not Stable Diffusion's text-to-image UNet"
        )
    _raise_if(bad, "UNetConfig")
    levels = range(len(c.channel_mult))
    return dict(
        sample_size=sample_size,
        in_channels=c.in_channels,
        out_channels=c.out_channels,
        down_block_types=[("CrossAttnDownBlock2D" if i in c.attention_levels else "DownBlock2D") for i in levels],
        up_block_types=[("CrossAttnUpBlock2D" if i in c.attention_levels else "UpBlock2D") for i in reversed(levels)],
        mid_block_type="UNetMidBlock2DCrossAttn",
        block_out_channels=[c.model_channels * m for m in c.channel_mult],
        layers_per_block=c.num_res_blocks,
        cross_attention_dim=c.context_dim,
        attention_head_dim=c.num_heads,  # diffusers' historical name: this number is the head COUNT
        transformer_layers_per_block=c.transformer_depth,
        use_linear_projection=True,
        norm_num_groups=32,
        norm_eps=1e-5,
        act_fn="silu",
        flip_sin_to_cos=True,
        freq_shift=0,  # cos-first, as ours
        dropout=c.dropout,
    )


def vae_config_to_diffusers(
    c: AutoencoderConfig, sample_size: int, scaling_factor: float, norm_num_groups: int
) -> dict:
    if c.reg != "kl":
        _raise_if(
            {
                "reg": f"{c.reg!r}: only KL-reg has a counterpart (AutoencoderKL); "
                "a VQ autoencoder would need diffusers' VQModel"
            },
            "AutoencoderConfig",
        )
    n = len(c.channel_mult)
    return dict(
        in_channels=c.in_channels,
        out_channels=c.in_channels,
        latent_channels=c.latent_channels,
        down_block_types=["DownEncoderBlock2D"] * n,
        up_block_types=["UpDecoderBlock2D"] * n,
        block_out_channels=[c.base_channels * m for m in c.channel_mult],
        layers_per_block=c.num_res_blocks,
        act_fn="silu",
        norm_num_groups=norm_num_groups,
        sample_size=sample_size,
        scaling_factor=float(scaling_factor),
        mid_block_add_attention=c.attn_mid,
        use_quant_conv=True,
        use_post_quant_conv=True,
        force_upcast=False,
    )


def scheduler_config(config: LDMConfig) -> dict:
    """DDIMScheduler settings that reproduce our schedule and ``ddim_timesteps`` (for S < T)."""
    bad = {}
    if config.schedule != "linear":
        bad["schedule"] = f"{config.schedule!r}: only LDM's 'linear' (diffusers' scaled_linear) is mapped"
    _raise_if(bad, "LDMConfig")
    return dict(
        num_train_timesteps=config.T,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        beta_schedule="scaled_linear",  # betas = linspace(sqrt(b0), sqrt(b1), T) ** 2, as ours
        clip_sample=False,
        set_alpha_to_one=False,  # the last DDIM step lands on alpha_bar_0, as ours
        steps_offset=1,
        timestep_spacing="leading",  # tau = range(0, T, T // S) + 1 = ddim_timesteps
        prediction_type="epsilon" if config.parameterization == "eps" else "v_prediction",
    )


def _raise_if(bad: dict, where: str) -> None:
    if bad:
        lines = "\n".join(f"  {k} = {v}" for k, v in bad.items())
        raise ValueError(f"{where} fields with no counterpart on the other side:\n{lines}")


# ============================================================================ state-dict key maps
_RES = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip": "conv_shortcut",
}
_ST = [
    (r"^blocks\.", "transformer_blocks."),
    (r"\.ff\.proj_in\.", ".ff.net.0.proj."),
    (r"\.ff\.net\.1\.", ".ff.net.2."),
]


def _unet_module_map(c: UNetConfig) -> dict[str, str]:
    """Our module prefix -> diffusers' (e.g. 'down.1.1' -> 'down_blocks.0.attentions.0')."""
    m = {
        "time_embed.0": "time_embedding.linear_1",
        "time_embed.2": "time_embedding.linear_2",
        "conv_in": "conv_in",
        "out.0": "conv_norm_out",
        "out.2": "conv_out",
        "middle.0": "mid_block.resnets.0",
        "middle.1": "mid_block.attentions.0",
        "middle.2": "mid_block.resnets.1",
    }
    n, k = len(c.channel_mult), 0
    for level in range(n):  # our `down` list, block by block
        for j in range(c.num_res_blocks):
            m[f"down.{k}.0"] = f"down_blocks.{level}.resnets.{j}"
            m[f"down.{k}.1"] = f"down_blocks.{level}.attentions.{j}"
            k += 1
        if level < n - 1:
            m[f"down.{k}.0"] = f"down_blocks.{level}.downsamplers.0"
            k += 1
    k = 0
    for u, level in enumerate(reversed(range(n))):  # our `up` list; diffusers counts up blocks from the bottom
        for j in range(c.num_res_blocks + 1):
            m[f"up.{k}.0"] = f"up_blocks.{u}.resnets.{j}"
            has_attn = level in c.attention_levels
            if has_attn:
                m[f"up.{k}.1"] = f"up_blocks.{u}.attentions.{j}"
            if level > 0 and j == c.num_res_blocks:
                m[f"up.{k}.{2 if has_attn else 1}"] = f"up_blocks.{u}.upsamplers.0"
            k += 1
    return m


def _vae_module_map(c: AutoencoderConfig) -> dict[str, str]:
    n, m = len(c.channel_mult), {"quant_conv": "quant_conv", "post_quant_conv": "post_quant_conv"}
    for part in ("encoder", "decoder"):
        m.update(
            {
                f"{part}.conv_in": f"{part}.conv_in",
                f"{part}.norm_out": f"{part}.conv_norm_out",
                f"{part}.conv_out": f"{part}.conv_out",
                f"{part}.mid.0": f"{part}.mid_block.resnets.0",
                f"{part}.mid.1": f"{part}.mid_block.attentions.0",
                f"{part}.mid.2": f"{part}.mid_block.resnets.1",
            }
        )
    k = 0
    for level in range(n):
        for j in range(c.num_res_blocks):
            m[f"encoder.down.{k}"], k = f"encoder.down_blocks.{level}.resnets.{j}", k + 1
        if level < n - 1:
            m[f"encoder.down.{k}"], k = f"encoder.down_blocks.{level}.downsamplers.0", k + 1
    k = 0
    for u, level in enumerate(reversed(range(n))):
        for j in range(c.num_res_blocks + 1):
            m[f"decoder.up.{k}"], k = f"decoder.up_blocks.{u}.resnets.{j}", k + 1
        if level > 0:
            m[f"decoder.up.{k}"], k = f"decoder.up_blocks.{u}.upsamplers.0", k + 1
    return m


def _rename(key: str, modules: dict[str, str]) -> str:
    """One of our state-dict keys -> diffusers' key (inside a module: ResBlock and transformer renames)."""
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):  # the longest mapped module prefix
        prefix = ".".join(parts[:cut])
        if prefix in modules:
            rest = ".".join(parts[cut:])
            target = modules[prefix]
            if ".resnets." in target:
                inner, leaf = rest.rsplit(".", 1)
                rest = f"{_RES.get(inner, inner)}.{leaf}"
            if ".attentions." in target and not target.startswith(("encoder", "decoder")):
                for pattern, new in _ST:
                    rest = re.sub(pattern, new, rest)
            return f"{target}.{rest}"
    raise KeyError(f"no diffusers counterpart for {key!r}")


def unet_to_diffusers_state(unet: UNet) -> dict[str, torch.Tensor]:
    modules = _unet_module_map(unet.config)
    return {_rename(k, modules): v for k, v in unet.state_dict().items()}


def vae_to_diffusers_state(ae: Autoencoder) -> dict[str, torch.Tensor]:
    """Our Autoencoder's weights under AutoencoderKL's names; the mid attention's fused qkv 1x1 conv
    becomes three Linear layers, its proj_out conv a Linear."""
    modules, out = _vae_module_map(ae.config), {}
    for k, v in ae.state_dict().items():
        if k == "scale_factor":
            continue  # goes to the config as scaling_factor
        if ".mid.1." in k:  # AttnBlock: norm, qkv, proj_out
            prefix, name, leaf = k.rsplit(".", 2)
            target = modules[prefix]
            if name == "norm":
                out[f"{target}.group_norm.{leaf}"] = v
            elif name == "qkv":
                for part, chunk in zip(("to_q", "to_k", "to_v"), v.chunk(3, dim=0)):
                    out[f"{target}.{part}.{leaf}"] = chunk.flatten(1) if leaf == "weight" else chunk
            else:
                out[f"{target}.to_out.0.{leaf}"] = v.flatten(1) if leaf == "weight" else v
            continue
        if k.startswith("quantizer."):
            raise ValueError("AutoencoderConfig.reg = 'vq' has no AutoencoderKL counterpart")
        out[_rename(k, modules)] = v
    return out


# ============================================================================ exact fixes
def _group_norm_fixes(ours: nn.Module, theirs: nn.Module, modules: dict[str, str]) -> dict[str, list]:
    """GroupNorms whose groups or eps differ between our module and its diffusers counterpart:
    {their module name: [num_groups, eps]} with OUR values (what the diffusers model must be set to)."""
    theirs_named = dict(theirs.named_modules())
    fixes = {}
    for name, their_name in _norm_pairs(ours, modules):
        mod, other = ours.get_submodule(name), theirs_named[their_name]
        if (other.num_groups, other.eps) != (mod.num_groups, mod.eps):
            fixes[their_name] = [mod.num_groups, mod.eps]
    return fixes


def _norm_pairs(ours: nn.Module, modules: dict[str, str]) -> list[tuple[str, str]]:
    """(our GroupNorm's name, its diffusers counterpart's name) for every GroupNorm of ours."""
    pairs = []
    for name, mod in ours.named_modules():
        if isinstance(mod, nn.GroupNorm):
            their = _rename(f"{name}.weight", modules).rsplit(".", 1)[0]
            if their.startswith(("encoder", "decoder")) and ".mid_block.attentions.0.norm" in their:
                their = their.replace(".norm", ".group_norm")  # the autoencoder's AttnBlock
            pairs.append((name, their))
    return pairs


def apply_exact_fixes(model: nn.Module, exact: dict) -> nn.Module:
    """Set the recorded GroupNorm groups / eps and the encoder's symmetric padding on a diffusers model."""
    named = dict(model.named_modules())
    for name, (groups, eps) in exact.get("group_norms", {}).items():
        named[name].num_groups, named[name].eps = groups, eps
    for name in exact.get("symmetric_downsample", []):
        named[name].padding = 1  # Downsample2D: skip its (0, 1, 0, 1) pad ...
        named[name].conv.padding = (1, 1)  # ... and pad one pixel on every side, as ours
    return model


def _save_with_exact(model, folder: Path, exact: dict) -> None:
    model.save_pretrained(folder, safe_serialization=True)
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config[EXACT_KEY] = exact
    path.write_text(json.dumps(config, indent=2, sort_keys=True))


def _read_exact(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "config.json").read_text()).get(EXACT_KEY, {})


# ============================================================================ export
def export_unet(unet: UNet, folder: str | Path, sample_size: int):
    """Write ``folder`` for ``UNet2DConditionModel.from_pretrained``; returns the diffusers model (exact)."""
    from diffusers import UNet2DConditionModel

    theirs = UNet2DConditionModel(**unet_config_to_diffusers(unet.config, sample_size))
    _load_strict(theirs, unet_to_diffusers_state(unet), "UNet")
    exact = {"group_norms": _group_norm_fixes(unet, theirs, _unet_module_map(unet.config))}
    _save_with_exact(theirs, Path(folder), exact)
    return apply_exact_fixes(theirs.eval(), exact)


def export_vae(ae: Autoencoder, folder: str | Path, sample_size: int):
    """Write ``folder`` for ``AutoencoderKL.from_pretrained`` (scaling_factor = our measured latent scale)."""
    from diffusers import AutoencoderKL

    groups = [m.num_groups for m in ae.modules() if isinstance(m, nn.GroupNorm)]
    common = max(set(groups), key=groups.count)  # diffusers has ONE group count: take our most frequent
    theirs = AutoencoderKL(**vae_config_to_diffusers(ae.config, sample_size, float(ae.scale_factor), common))
    _load_strict(theirs, vae_to_diffusers_state(ae), "autoencoder")
    exact = {
        "group_norms": _group_norm_fixes(ae, theirs, _vae_module_map(ae.config)),
        "symmetric_downsample": [
            n for n, m in theirs.named_modules() if n.startswith("encoder.") and type(m).__name__ == "Downsample2D"
        ],
    }
    _save_with_exact(theirs, Path(folder), exact)
    return apply_exact_fixes(theirs.eval(), exact)


def _load_strict(theirs: nn.Module, state: dict, what: str) -> None:
    reference = theirs.state_dict()
    missing, extra = sorted(set(reference) - set(state)), sorted(set(state) - set(reference))
    wrong = [k for k in set(reference) & set(state) if reference[k].shape != state[k].shape]
    if missing or extra or wrong:
        raise ValueError(
            f"the {what} weights do not map one to one: missing {missing[:5]}, unexpected {extra[:5]}, "
            f"shape mismatch {wrong[:5]}"
        )
    theirs.load_state_dict({k: v.float() for k, v in state.items()})


def export_to_diffusers(ldm: LatentDiffusion, out_dir: str | Path) -> Path:
    """Write OUT/unet, OUT/vae, OUT/scheduler (diffusers' classes load them), OUT/text_encoder and
    OUT/tokenizer (ours: tau_theta's weights and config, the vocabulary) and OUT/model_index.json."""
    from diffusers import DDIMScheduler

    if ldm.autoencoder is None:
        raise ValueError(
            "LDMConfig.autoencoder = None (a pixel-space model) has no Stable Diffusion counterpart: SD needs a VAE"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    c = ldm.config
    latent = ldm.latent_shape[1]
    export_unet(ldm.unet, out / "unet", latent)
    export_vae(ldm.autoencoder, out / "vae", c.image_size)
    DDIMScheduler(**scheduler_config(c)).save_pretrained(out / "scheduler")
    (out / "text_encoder").mkdir(exist_ok=True)
    save_file(
        {k: v.float().contiguous() for k, v in ldm.text_encoder.state_dict().items()},
        str(out / "text_encoder" / "model.safetensors"),
    )
    (out / "text_encoder" / "config.json").write_text(
        json.dumps({"_class_name": "ldm_mini.text.TextEncoder", **asdict(c.text)}, indent=2)
    )
    (out / "tokenizer").mkdir(exist_ok=True)
    (out / "tokenizer" / "vocab.json").write_text(
        json.dumps({"vocab": ldm.tokenizer.vocab, "context_len": ldm.tokenizer.context_len}, indent=2)
    )
    import diffusers

    index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": [None, None],
        "tokenizer": [None, None],
        "safety_checker": [None, None],
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
    }
    (out / "model_index.json").write_text(json.dumps(index, indent=2))
    return out


# ============================================================================ loading the export with diffusers
def load_unet(folder: str | Path, exact: bool = True):
    """``UNet2DConditionModel.from_pretrained(folder)``, with the recorded fixes applied when ``exact``."""
    from diffusers import UNet2DConditionModel

    model = UNet2DConditionModel.from_pretrained(folder).eval()
    return apply_exact_fixes(model, _read_exact(folder)) if exact else model


def load_vae(folder: str | Path, exact: bool = True):
    """``AutoencoderKL.from_pretrained(folder)``, with the recorded fixes applied when ``exact``."""
    from diffusers import AutoencoderKL

    model = AutoencoderKL.from_pretrained(folder).eval()
    return apply_exact_fixes(model, _read_exact(folder)) if exact else model


def load_pipeline(out_dir: str | Path, exact: bool = True):
    """diffusers' own StableDiffusionPipeline over the exported unet, vae and scheduler.

    No text encoder, tokenizer or safety checker: prompts come in as ``prompt_embeds`` from our
    tau_theta (see ``pipeline_embeds``)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    out = Path(out_dir)
    pipe = StableDiffusionPipeline(
        vae=load_vae(out / "vae", exact),
        text_encoder=None,
        tokenizer=None,
        unet=load_unet(out / "unet", exact),
        scheduler=DDIMScheduler.from_pretrained(out / "scheduler"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_text(out_dir: str | Path) -> tuple[Tokenizer, TextEncoder]:
    """Our tokenizer and tau_theta from an exported folder."""
    out = Path(out_dir)
    vocab = json.loads((out / "tokenizer" / "vocab.json").read_text())
    tokenizer = Tokenizer(vocab["vocab"][2:], context_len=vocab["context_len"])
    config = json.loads((out / "text_encoder" / "config.json").read_text())
    config.pop("_class_name", None)
    encoder = TextEncoder(TextEncoderConfig(**config))
    encoder.load_state_dict(load_file(str(out / "text_encoder" / "model.safetensors")))
    return tokenizer, encoder.eval()


@torch.no_grad()
def pipeline_embeds(
    tokenizer: Tokenizer, text_encoder: TextEncoder, captions: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompt_embeds, negative_prompt_embeds) for StableDiffusionPipeline, from our tau_theta.

    The pipeline passes no attention mask to its UNet (SD's CLIP context attends to its padding),
    while our UNet ignores padding tokens. So we cut the padding off: every caption keeps exactly its
    real tokens, which needs captions with the same number of words. The unconditional context
    tau_theta("") has one real token (<start>); repeating it n times changes nothing, since
    attention over n equal keys and values returns that value.
    """
    tokens = tokenizer(captions)
    lengths = tokenizer.mask(tokens).sum(1)
    if (lengths != lengths[0]).any():
        raise ValueError(
            f"captions of different lengths ({lengths.tolist()} tokens): the pipeline takes no attention mask, "
            "so call it once per group of captions with the same number of words"
        )
    n = int(lengths[0])
    context, _ = text_encoder(tokens)
    uncond, _ = text_encoder(tokenizer([""]))
    negative = uncond[:, :1].expand(len(captions), n, -1).contiguous()
    return context[:, :n].contiguous(), negative


# ============================================================================ diffusers -> ldm_mini
_UNET_NEEDS = {  # diffusers config field: the only value our UNet reproduces
    "act_fn": "silu",
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "norm_eps": 1e-5,
    "center_input_sample": False,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "class_embed_type": None,
    "addition_embed_type": None,
    "time_embedding_type": "positional",
    "time_cond_proj_dim": None,
    "dual_cross_attention": False,
    "only_cross_attention": False,
    "resnet_time_scale_shift": "default",
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "encoder_hid_dim": None,
    "attention_type": "default",
    "resnet_skip_time_act": False,
    "resnet_out_scale_factor": 1.0,
    "time_embedding_dim": None,
    "time_embedding_act_fn": None,
    "timestep_post_act": None,
    "cross_attention_norm": None,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "num_class_embeds": None,
    "num_attention_heads": None,
}
_VAE_NEEDS = {
    "act_fn": "silu",
    "use_quant_conv": True,
    "use_post_quant_conv": True,
    "shift_factor": None,
    "latents_mean": None,
    "latents_std": None,
}


def _same_value(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) < 1e-12
    return a == b


def _one(value, name: str, bad: dict):
    """diffusers allows per-block lists for some fields; ours has one value."""
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            bad[name] = f"{list(value)}: per-block values differ; ldm_mini uses one value for every level"
        return value[0]
    return value


def unet_config_from_diffusers(d: dict) -> UNetConfig:
    bad = {k: f"{d[k]!r} (ldm_mini needs {v!r})" for k, v in _UNET_NEEDS.items() if k in d and not _same_value(d[k], v)}
    boc = list(d["block_out_channels"])
    mc = boc[0]
    if any(b % mc for b in boc):
        bad["block_out_channels"] = (
            f"{boc}: every width must be a multiple of the first (ours: model_channels * channel_mult)"
        )
    attention = []
    for i, kind in enumerate(d["down_block_types"]):
        if kind == "CrossAttnDownBlock2D":
            attention.append(i)
        elif kind != "DownBlock2D":
            bad["down_block_types"] = (
                f"{kind!r} at level {i}: only CrossAttnDownBlock2D and DownBlock2D have counterparts"
            )
    expected_up = [("CrossAttnUpBlock2D" if i in attention else "UpBlock2D") for i in reversed(range(len(boc)))]
    if list(d["up_block_types"]) != expected_up:
        bad["up_block_types"] = f"{list(d['up_block_types'])}: ours mirror the down blocks, {expected_up}"
    config = dict(
        in_channels=d["in_channels"],
        out_channels=d["out_channels"],
        model_channels=mc,
        channel_mult=tuple(b // mc for b in boc),
        attention_levels=tuple(attention),
        num_res_blocks=_one(d["layers_per_block"], "layers_per_block", bad),
        num_heads=_one(d["attention_head_dim"], "attention_head_dim", bad),
        transformer_depth=_one(d.get("transformer_layers_per_block", 1), "transformer_layers_per_block", bad),
        context_dim=_one(d["cross_attention_dim"], "cross_attention_dim", bad),
        dropout=d.get("dropout", 0.0),
    )
    _raise_if(bad, "diffusers UNet2DConditionModel config")
    return UNetConfig(**config)


def vae_config_from_diffusers(d: dict) -> AutoencoderConfig:
    bad = {k: f"{d[k]!r} (ldm_mini needs {v!r})" for k, v in _VAE_NEEDS.items() if k in d and not _same_value(d[k], v)}
    boc = list(d["block_out_channels"])
    n = len(boc)
    for field, kind in (("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D")):
        if list(d[field]) != [kind] * n:
            bad[field] = f"{list(d[field])}: ldm_mini's E and D are {kind} at every level"
    if d["in_channels"] != d["out_channels"]:
        bad["out_channels"] = f"{d['out_channels']}: our D returns in_channels={d['in_channels']}"
    if any(b % boc[0] for b in boc) or 2 ** (n - 1) not in (1, 2, 4, 8, 16):
        bad["block_out_channels"] = f"{boc}: need widths base * mult and 1 to 5 levels (f = 1 .. 16)"
    _raise_if(bad, "diffusers AutoencoderKL config")
    return AutoencoderConfig(
        f=2 ** (n - 1),
        reg="kl",
        in_channels=d["in_channels"],
        base_channels=boc[0],
        channel_mult=tuple(b // boc[0] for b in boc),
        num_res_blocks=d["layers_per_block"],
        latent_channels=d["latent_channels"],
        attn_mid=d.get("mid_block_add_attention", True),
    )


def _check_norms(ours: nn.Module, theirs: nn.Module, modules: dict[str, str], what: str, field: str) -> None:
    """Our GroupNorms must group like diffusers' (eps differences we copy over: they are not architecture)."""
    fixes = _group_norm_fixes(ours, theirs, modules)
    wrong = {n: v for n, v in fixes.items() if dict(theirs.named_modules())[n].num_groups != v[0]}
    if wrong:
        name, (groups, _) = next(iter(wrong.items()))
        other = dict(theirs.named_modules())[name]
        raise ValueError(
            f"diffusers {what} config field {field}={other.num_groups}: "
            f"its layer {name} ({other.num_channels} channels) "
            f"normalises in {other.num_groups} groups, ldm_mini's rule gives {groups} "
            f"({len(wrong)} layers differ); no ldm_mini config reproduces it"
        )
    theirs_named = dict(theirs.named_modules())
    for name, their in _norm_pairs(ours, modules):  # copy diffusers' eps (1e-6 in Transformer2DModel) onto ours
        ours.get_submodule(name).eps = theirs_named[their].eps


def load_from_diffusers(
    unet_dir: str | Path | None, vae_dir: str | Path | None = None
) -> tuple[UNet | None, Autoencoder | None]:
    """ldm_mini's UNet and Autoencoder with the weights of a diffusers UNet2DConditionModel / AutoencoderKL
    folder whose config fits ours (a ValueError names every field that does not). Either may be None.

    The autoencoder gets ``scale_factor`` = the folder's ``scaling_factor``. diffusers' encoder pads its
    stride-2 convolutions on the right and bottom only; ours pads every side, so the loaded encoder's
    Downsample convolutions are switched to diffusers' padding (its decoder needs no change).
    """
    _need_diffusers()
    unet = ae = None
    if unet_dir is not None:
        from diffusers import UNet2DConditionModel

        theirs = UNet2DConditionModel.from_pretrained(unet_dir).eval()
        unet = UNet(unet_config_from_diffusers(dict(theirs.config))).eval()
        modules = _unet_module_map(unet.config)
        _check_norms(unet, theirs, modules, "UNet2DConditionModel", "norm_num_groups")
        state = theirs.state_dict()
        unet.load_state_dict({k: _as_ours(state[_rename(k, modules)], v) for k, v in unet.state_dict().items()})
    if vae_dir is not None:
        from diffusers import AutoencoderKL

        theirs = AutoencoderKL.from_pretrained(vae_dir).eval()
        ae = Autoencoder(vae_config_from_diffusers(dict(theirs.config))).eval()
        modules = _vae_module_map(ae.config)
        _check_norms(ae, theirs, modules, "AutoencoderKL", "norm_num_groups")
        ae.load_state_dict(_vae_from_diffusers_state(ae, theirs.state_dict(), modules, theirs.config.scaling_factor))
        for name, m in ae.encoder.down.named_children():
            if type(m).__name__ == "Downsample":
                ae.encoder.down[int(name)] = _AsymmetricDownsample(m.conv)
    return unet, ae


def _vae_from_diffusers_state(ae: Autoencoder, state: dict, modules: dict[str, str], scaling_factor: float) -> dict:
    """AutoencoderKL's weights under our names: to_q, to_k, to_v are stacked back into one qkv 1x1 conv."""
    ours = {}
    for k, v in ae.state_dict().items():
        if k == "scale_factor":
            ours[k] = torch.tensor(float(scaling_factor))
        elif ".mid.1." in k:  # AttnBlock: norm, qkv, proj_out
            prefix, name, leaf = k.rsplit(".", 2)
            target = modules[prefix]
            if name == "qkv":
                ours[k] = torch.cat([state[f"{target}.{p}.{leaf}"] for p in ("to_q", "to_k", "to_v")]).reshape(v.shape)
            else:
                ours[k] = state[f"{target}.{'group_norm' if name == 'norm' else 'to_out.0'}.{leaf}"].reshape(v.shape)
        else:
            ours[k] = _as_ours(state[_rename(k, modules)], v)
    if len(vae_to_diffusers_state(ae)) != len(state):
        raise ValueError("the AutoencoderKL has weights that ldm_mini's Autoencoder has no place for")
    return ours


def _as_ours(theirs: torch.Tensor, ours: torch.Tensor) -> torch.Tensor:
    """diffusers' tensor shaped like ours (a 1x1 conv proj_in/out of SD v1 becomes our Linear)."""
    return theirs.reshape(ours.shape) if theirs.numel() == ours.numel() else theirs


class _AsymmetricDownsample(nn.Module):
    """diffusers' (and the reference code's) encoder downsampling: pad right and bottom, stride-2 conv."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv
        self.conv.padding = (0, 0)

    def forward(self, x):
        return self.conv(nn.functional.pad(x, (0, 1, 0, 1)))


def timesteps_match(scheduler, steps: int, T: int = 1000) -> bool:
    """Does diffusers' scheduler visit exactly our DDIM subsequence tau (in reverse)?"""
    scheduler.set_timesteps(steps)
    return sorted(scheduler.timesteps.tolist()) == ddim_timesteps(T, steps).tolist()
