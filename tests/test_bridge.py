"""The diffusers bridge: our LDM exported to a Stable Diffusion folder computes what ours computes,
and diffusers models load into ldm_mini. Contracts of issue 18 (UNet and VAE within 1e-4, the full
StableDiffusionPipeline within 2e-3 per pixel)."""

import json

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")  # StableDiffusionPipeline imports it

import ldm_mini  # noqa: E402
from ldm_mini import bridge  # noqa: E402
from ldm_mini.sampling import ddim_timesteps  # noqa: E402

CAPTIONS = ["a red circle", "a large blue square below a green triangle", "", "a small yellow triangle"]


@pytest.fixture(scope="module")
def ldm():
    return ldm_mini.load_pretrained("shapes-kl-f4").eval()


@pytest.fixture(scope="module")
def exported(ldm, tmp_path_factory):
    return bridge.export_to_diffusers(ldm, tmp_path_factory.mktemp("sd"))


def test_folder_loads_with_diffusers_own_classes(exported, ldm):
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(exported / "unet")
    vae = AutoencoderKL.from_pretrained(exported / "vae")
    scheduler = DDIMScheduler.from_pretrained(exported / "scheduler")
    assert sum(p.numel() for p in unet.parameters()) == ldm.unet.num_params() == 6_600_900
    assert vae.config.scaling_factor == pytest.approx(float(ldm.autoencoder.scale_factor), rel=1e-7)
    assert sum(p.numel() for p in vae.parameters()) == sum(p.numel() for p in ldm.autoencoder.parameters())
    c = scheduler.config
    assert (c.beta_schedule, c.beta_start, c.beta_end, c.num_train_timesteps) == ("scaled_linear", 0.00085, 0.012, 1000)
    assert (c.steps_offset, c.set_alpha_to_one, c.clip_sample, c.prediction_type) == (1, False, False, "epsilon")
    for steps in (50, 20, 7):  # 7 does not divide 1000: both keep the first S of range(0, T, T // S)
        scheduler.set_timesteps(steps)
        assert scheduler.timesteps.flip(0).tolist() == ddim_timesteps(1000, steps).tolist()
    # diffusers computes alpha_bar in float32, we in float64
    assert (scheduler.alphas_cumprod.double() - ldm.schedule.alphas_cumprod).abs().max() < 1e-6


def test_unet_equals_eps(exported, ldm):
    g = torch.Generator().manual_seed(0)
    z_t, t = torch.randn(4, 4, 8, 8, generator=g), torch.tensor([1, 200, 500, 999])
    tokens = ldm.tokens(CAPTIONS)
    context, mask = ldm.context(tokens)
    with torch.no_grad():
        ours = ldm.eps(z_t, t, tokens)
        for exact in (True, False):  # plain from_pretrained differs only by a GroupNorm eps (1e-6 vs 1e-5)
            theirs = bridge.load_unet(exported / "unet", exact)(
                z_t, t, encoder_hidden_states=context, encoder_attention_mask=mask
            ).sample
            assert (theirs - ours).abs().max() < 1e-4, exact
    assert ours.abs().max() > 1.0  # a real prediction, not zeros


def test_vae_decode_equals_ours(exported, ldm):
    vae = bridge.load_vae(exported / "vae")
    z = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1))  # z_0 in the LDM's scaled units
    with torch.no_grad():
        theirs = vae.decode(z / vae.config.scaling_factor).sample
        assert (theirs.clamp(-1, 1) - ldm.decode(z)).abs().max() < 1e-4  # ldm.decode divides by the scale itself
        x = ldm.decode(z)
        assert (vae.encode(x).latent_dist.mean - ldm.autoencoder.encode_latent(x)).abs().max() < 1e-4
        # without the recorded fixes (one GroupNorm group count for every width) D is visibly different
        plain = bridge.load_vae(exported / "vae", exact=False).decode(z / vae.config.scaling_factor).sample
        assert (plain - theirs).abs().max() > 0.05


def test_stable_diffusion_pipeline_equals_generate(exported, ldm):
    pipe = bridge.load_pipeline(exported)
    tokenizer, text_encoder = bridge.load_text(exported)
    captions = ["a red circle", "a blue square"]  # same number of words: the pipeline takes no mask
    prompt_embeds, negative = bridge.pipeline_embeds(tokenizer, text_encoder, captions)
    x_T = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    steps, guidance = 10, 3.0
    ours = ldm.generate(captions, steps=steps, guidance=guidance, seed=0)  # seed 0 draws the same x_T
    theirs = pipe(
        prompt_embeds=prompt_embeds,
        negative_prompt_embeds=negative,
        latents=x_T.clone(),
        height=32,
        width=32,
        num_inference_steps=steps,
        guidance_scale=guidance,
        output_type="pt",
    ).images
    assert theirs.shape == ours.shape == (2, 3, 32, 32)
    assert (theirs - ours).abs().max() < 2e-3
    assert ours.std() > 0.1


def test_pipeline_embeds_cut_padding_and_refuse_mixed_lengths(exported):
    tokenizer, text_encoder = bridge.load_text(exported)
    pe, ne = bridge.pipeline_embeds(tokenizer, text_encoder, ["a red circle"])
    assert pe.shape == ne.shape == (1, 4, 64)  # <start> a red circle
    assert torch.equal(ne[0, 0], ne[0, 3])
    with pytest.raises(ValueError, match="different lengths"):
        bridge.pipeline_embeds(tokenizer, text_encoder, ["a red circle", "a large red circle"])


def test_export_round_trip_and_plain_from_pretrained(exported, ldm):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(
        exported,
        text_encoder=None,
        tokenizer=None,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    assert pipe.vae_scale_factor == 4
    unet, ae = bridge.load_from_diffusers(exported / "unet", None)
    for k, v in ldm.unet.state_dict().items():
        assert torch.equal(unet.state_dict()[k], v.float()), k
    exact = json.loads((exported / "vae" / "config.json").read_text())[bridge.EXACT_KEY]
    assert "decoder.conv_norm_out" in exact["group_norms"]  # width 32: 8 groups in ours


def test_unmapped_fields_are_named(ldm):
    from ldm_mini.autoencoder import AutoencoderConfig
    from ldm_mini.unet import UNetConfig

    with pytest.raises(ValueError, match="concat_channels"):
        bridge.unet_config_to_diffusers(UNetConfig(concat_channels=3, use_context=True), 8)
    with pytest.raises(ValueError, match="reg"):
        bridge.vae_config_to_diffusers(AutoencoderConfig(reg="vq"), 32, 1.0, 8)
    config = ldm.config
    config_cosine = type(config)(**{**config.__dict__, "schedule": "cosine"})
    with pytest.raises(ValueError, match="schedule"):
        bridge.scheduler_config(config_cosine)


# ---------------------------------------------------------------------------- diffusers -> ldm_mini
def small_unet(**overrides):
    from diffusers import UNet2DConditionModel

    config = dict(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(64, 128),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=2,
        norm_num_groups=32,
        use_linear_projection=False,
    )  # SD v1's 1x1-conv proj_in/out: become our Linear layers
    torch.manual_seed(0)
    return UNet2DConditionModel(**{**config, **overrides})


def test_diffusers_unet_loads_into_ldm_mini(tmp_path):
    theirs = small_unet().eval()
    theirs.save_pretrained(tmp_path)
    unet, _ = bridge.load_from_diffusers(tmp_path)
    assert unet.config.channel_mult == (1, 2) and unet.config.attention_levels == (1,) and unet.config.num_heads == 2
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(3, 4, 8, 8, generator=g), torch.tensor([3, 400, 990])
    ctx = torch.randn(3, 5, 32, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        expected = theirs(x, t, encoder_hidden_states=ctx, encoder_attention_mask=mask).sample
        got = unet(x, t, ctx, context_mask=mask)
    assert expected.abs().max() > 0.1
    assert (got - expected).abs().max() < 1e-4


def test_diffusers_vae_loads_into_ldm_mini(tmp_path):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    theirs = AutoencoderKL(
        block_out_channels=(32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=16,
        scaling_factor=0.3,
    ).eval()
    theirs.save_pretrained(tmp_path)
    _, ae = bridge.load_from_diffusers(None, tmp_path)
    assert ae.config.f == 4 and float(ae.scale_factor) == pytest.approx(0.3)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        z = theirs.encode(x).latent_dist.mean
        assert (ae.encode_latent(x) - z).abs().max() < 1e-4  # the encoder's right/bottom padding, as diffusers
        assert (ae.decode(z) - theirs.decode(z).sample).abs().max() < 1e-4


def test_diffusers_configs_we_cannot_reproduce_are_named(tmp_path):
    small_unet(flip_sin_to_cos=False, freq_shift=1).save_pretrained(tmp_path / "u1")
    with pytest.raises(ValueError, match="flip_sin_to_cos") as info:
        bridge.load_from_diffusers(tmp_path / "u1")
    assert "freq_shift" in str(info.value)
    small_unet(norm_num_groups=16).save_pretrained(tmp_path / "u2")
    with pytest.raises(ValueError, match="norm_num_groups=16"):
        bridge.load_from_diffusers(tmp_path / "u2")
    from diffusers import AutoencoderKL

    AutoencoderKL(
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=8,
    ).save_pretrained(tmp_path / "v")
    with pytest.raises(ValueError, match="norm_num_groups=8"):  # 64 channels: diffusers 8 groups, ours 16
        bridge.load_from_diffusers(None, tmp_path / "v")


def test_cli_export_diffusers(tmp_path, capsys):
    from ldm_mini.cli import main

    assert main(["export-diffusers", "shapes-kl-f4", str(tmp_path / "sd")]) == 0
    assert "MB" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "sd").iterdir()} == {
        "unet",
        "vae",
        "scheduler",
        "text_encoder",
        "tokenizer",
        "model_index.json",
    }
    assert main(["export-diffusers", "sr-ldm-f4", str(tmp_path / "sr")]) == 2  # concatenation: no SD counterpart
    assert "concat_channels" in capsys.readouterr().err
