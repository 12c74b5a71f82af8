"""Lesson 10's helpers: binding vs presence scores, attention maps with gradients, the binding and
Attend-and-Excite losses, and the attention-guided sampler on a tiny model."""

import json

import pytest
import torch
from tiny import tiny_unet

from ldm_mini import guidance as g
from ldm_mini.autoencoder import AutoencoderConfig
from ldm_mini.config import Profile
from ldm_mini.data import COLOURS, caption_objects
from ldm_mini.eval import prompts
from ldm_mini.experiments import binding as b
from ldm_mini.ldm import LatentDiffusion, LDMConfig
from ldm_mini.text import TextEncoderConfig, Tokenizer

AE = AutoencoderConfig(f=2, reg="kl", base_channels=8, latent_channels=2, attn_mid=False)
UNET = tiny_unet()


def _ldm(pooled=False):
    torch.manual_seed(0)
    text = TextEncoderConfig(dim=8, n_layers=1, n_heads=2, pooled=pooled)
    ldm = LatentDiffusion(LDMConfig(autoencoder=AE, unet=UNET, text=text, image_size=16)).eval()
    with torch.no_grad():  # a fresh UNet outputs exactly 0 (zero-initialised convs): wake it up
        for p in ldm.unet.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return ldm


def seen(c1, s1, c2="none", s2="none", pos1="left", pos2="right"):
    """What the classifier reports for an image (object 1 = left / top)."""
    return {
        "colour1": c1,
        "shape1": s1,
        "size1": "small",
        "pos1": pos1,
        "colour2": c2,
        "shape2": s2,
        "size2": "small" if s2 != "none" else "none",
        "pos2": pos2 if s2 != "none" else "none",
    }


AND = "a red circle and a blue square"


def test_score_binding_right_swapped_and_missing():
    right = prompts.score_binding(AND, seen("blue", "square", "red", "circle"))  # either order is fine for "and"
    assert right == {"presence": True, "binding": True, "swapped": False, "binding_layout": True}
    swapped = prompts.score_binding(AND, seen("blue", "circle", "red", "square"))
    assert swapped == {"presence": True, "binding": False, "swapped": True, "binding_layout": False}
    one = prompts.score_binding(AND, seen("red", "circle"))  # blue square missing
    assert not one["presence"] and not one["binding"] and not one["swapped"]
    leak = prompts.score_binding(AND, seen("red", "circle", "red", "square"))  # red leaked onto the square
    assert not leak["presence"] and not leak["binding"]


def test_binding_ignores_layout_but_binding_layout_does_not():
    caption = "a red circle to the left of a blue square"
    flipped = seen("blue", "square", "red", "circle")  # right pairs, wrong sides
    assert prompts.score_binding(caption, flipped)["binding"]
    assert not prompts.score_binding(caption, flipped)["binding_layout"]
    assert prompts.score_binding(caption, seen("red", "circle", "blue", "square"))["binding_layout"]


def test_binding_table_fractions():
    captions = [AND] * 4
    preds = [seen("red", "circle", "blue", "square"), seen("blue", "circle", "red", "square"),
             seen("blue", "circle", "red", "square"), seen("red", "circle")]
    table = prompts.binding_table(captions, preds)
    assert table["n"] == 4
    assert table["presence"] == 0.75 and table["binding"] == 0.25 and table["swapped"] == 0.5
    assert table["binding_given_presence"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="one per image"):
        prompts.binding_table(captions, preds[:3])


def test_caption_objects_and_token_positions():
    assert caption_objects(AND) == [("red", "circle"), ("blue", "square")]
    with pytest.raises(ValueError, match="two objects"):
        caption_objects("a red circle")
    tok = Tokenizer()
    assert g.object_token_indices(tok, AND) == [(2, 3), (6, 7)]
    # canonical order: the circle is object 1 (left), though it is named second
    ids = g.object_token_indices(tok, "a blue square to the right of a red circle")
    words = ["<start>"] + tok.words("a blue square to the right of a red circle")
    assert [(words[c], words[s]) for c, s in ids] == [("red", "circle"), ("blue", "square")]


def test_two_object_captions_are_two_object():
    captions = prompts.two_object_captions(6, "test")
    assert len(captions) == 6 and all(len(caption_objects(c)) == 2 for c in captions)


def test_attention_probs_match_the_recorded_maps():
    ldm = _ldm()
    tokens = ldm.tokens([AND, "a green triangle above an orange circle"])
    context, mask = ldm.context(tokens)
    z, t = torch.randn(2, 2, 8, 8), torch.tensor([500, 900])
    with torch.no_grad(), g.capture_attention(ldm.unet, resolution=4) as found, ldm.unet.record_attention():
        ldm.unet(z, t, context, context_mask=mask)
    recorded = [m.mean(1) for m in ldm.unet.attention_maps().values()]  # b h w L, mean over heads
    assert len(found) == len(recorded) >= 1
    for ours, theirs in zip(found, recorded):
        assert torch.allclose(ours, theirs.flatten(1, 2), atol=1e-6)
        assert torch.allclose(ours.sum(-1), torch.ones(2, 16), atol=1e-5)  # weights over tokens
        assert ours[~mask[:, None, :].expand_as(ours)].abs().max() == 0  # padding gets nothing


def _maps(where: dict[int, int], L=10, p=16):
    """(1, p, L) maps: token -> the one pixel it is read at; elsewhere <start> takes the weight."""
    m = torch.full((1, p, L), 1e-4)
    m[0, :, 0] = 1.0
    for token, pixel in where.items():
        m[0, pixel, token] = 1.0
    return m / m.sum(-1, keepdim=True)


def test_bind_loss_prefers_colours_on_their_own_shapes():
    pairs = [[(2, 3), (6, 7)]]
    bound = _maps({2: 0, 3: 0, 6: 9, 7: 9})  # red and circle at pixel 0, blue and square at pixel 9
    swapped = _maps({2: 9, 3: 0, 6: 0, 7: 9})  # each colour where the other object's shape is
    assert g.bind_loss(bound, pairs).item() < g.bind_loss(swapped, pairs).item()
    assert g.bind_loss(bound, pairs).item() == pytest.approx(-2, abs=0.1)


def test_excite_loss_prefers_strong_peaks():
    pairs = [[(2, 3), (6, 7)]]
    peaked = _maps({2: 0, 3: 1, 6: 8, 7: 9})
    flat = torch.full((1, 16, 10), 0.1)
    assert g.excite_loss(peaked, pairs).item() < g.excite_loss(flat, pairs).item()
    assert g.excite_loss(flat, pairs).item() == pytest.approx(1 - 1 / 9, abs=1e-5)


def test_unguided_sampler_is_the_plain_sampler():
    ldm = _ldm()
    captions = [AND, "a green triangle above an orange circle"]
    plain = ldm.sample_latents(captions, steps=5, guidance=3.0, seed=3)
    ours = g.guided_sample_latents(ldm, captions, None, steps=5, guidance=3.0, seed=3)
    off = g.guided_sample_latents(ldm, captions, g.AttentionGuidance(scale=0.0), steps=5, guidance=3.0, seed=3)
    assert torch.equal(plain, ours) and torch.equal(plain, off)


@pytest.mark.parametrize("loss", ["bind", "excite"])
def test_guidance_step_lowers_its_loss_and_guided_sampling_differs(loss):
    ldm = _ldm()
    captions = [AND, "a green triangle above an orange circle"]
    context, mask = ldm.context(ldm.tokens(captions))
    pairs = [g.object_token_indices(ldm.tokenizer, c) for c in captions]
    config = g.AttentionGuidance(loss=loss, scale=0.02)
    z, t = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([900, 900])
    z1, before = g.guidance_step(ldm.unet, z, t, context, mask, pairs, config)
    _, after = g.guidance_step(ldm.unet, z1, t, context, mask, pairs, config)
    assert not torch.equal(z, z1)
    assert after.sum() < before.sum()
    trace = []
    guided = g.guided_sample_latents(
        ldm, captions, g.AttentionGuidance(loss=loss, scale=0.1, guided_steps=2), steps=4, seed=0, trace=trace
    )
    assert len(trace) == 2 and not torch.equal(guided, ldm.sample_latents(captions, steps=4, seed=0))


def test_guidance_refuses_pooled_text_and_bad_settings():
    with pytest.raises(ValueError, match="pooled"):
        g.guided_sample_latents(_ldm(pooled=True), [AND], g.AttentionGuidance(), steps=2)
    with pytest.raises(ValueError, match="loss must be"):
        g.AttentionGuidance(loss="magic")
    with pytest.raises(ValueError, match="resolution"):
        ldm = _ldm()
        context, mask = ldm.context(ldm.tokens([AND]))
        g.guidance_step(
            ldm.unet,
            torch.randn(1, 2, 8, 8),
            torch.tensor([10]),
            context,
            mask,
            [g.object_token_indices(ldm.tokenizer, AND)],
            g.AttentionGuidance(resolution=8),
        )


def test_attention_on_objects_reads_own_and_other():
    image = torch.ones(3, 8, 8)  # white, a red patch on the left, a blue patch on the right
    image[:, :, :4] = torch.tensor(COLOURS["red"])[:, None, None] / 255
    image[:, :, 4:] = torch.tensor(COLOURS["blue"])[:, None, None] / 255
    tok = Tokenizer()
    maps = torch.zeros(16, 8, 8)
    maps[2, :, :4] = 1.0  # "red" read on the red patch
    maps[3, :, 4:] = 1.0  # "circle" read on the blue patch: the circle was drawn blue
    swapped = seen("red", "square", "blue", "circle")
    rows = {r["word"]: r for r in b.attention_on_objects(image, maps, AND, swapped, tok)}
    assert rows["red"]["own"] == 1.0 and rows["red"]["other"] == 0.0
    assert rows["circle"]["own"] == 1.0 and rows["circle"]["other"] == 0.0  # own = the blue (circle) patch
    assert b.attention_on_objects(image, maps, AND, seen("red", "circle"), tok) is None


def test_sample_with_attention_matches_generate():
    ldm = _ldm()
    captions = [AND, "a green triangle above an orange circle"]
    images, maps = b.sample_with_attention(ldm, captions, steps=3, seed=1)
    assert torch.allclose(images, ldm.generate(captions, steps=3, seed=1), atol=1e-6)
    assert list(maps) == [4] and maps[4].shape == (2, 16, 16, 16)  # b L H W, 4x4 maps upsampled to 16x16
    assert torch.allclose(maps[4].sum(1), torch.ones(2, 16, 16), atol=1e-4)  # weights over tokens sum to 1


# ---------------------------------------------------------------- the whole experiment, on a toy budget

TOY = Profile(name="toy", n_train=64, n_eval=32, ldm_steps=4, batch_size=4, sample_steps=2, n_samples_eval=4)
TOY_RUN = dict(n=4, points=4, contrastive_steps=2, n_tune=4, scales=(0.03,), progress=False)
REQUIRED = ("encoder", "steps", "single", "single_ci", "presence", "presence_ci", "binding", "binding_ci", "swapped")


def test_the_experiment_runs_on_a_toy_profile_and_resumes_without_redoing_anything(tmp_path, monkeypatch):
    """``run`` end to end with the shipped recipe on a toy budget (4 steps, 4 captions per set): one row
    per encoder and point with its Wilson intervals; a second call trains, pretrains and measures nothing."""
    torch.set_num_threads(1)
    out, work = tmp_path / "out", tmp_path / "work"
    results = b.run(TOY, out_dir=out, work_dir=work, **TOY_RUN)
    rows = results["rows"]
    assert [(r["encoder"], r["steps"]) for r in rows] == [(e, s) for e in b.ENCODERS for s in (1, 2, 3, 4)]
    for row in rows:
        assert all(k in row for k in REQUIRED), sorted(row)
        for metric in ("single", "single_full", "presence", "binding", "swapped"):
            low, high = row[f"{metric}_ci"]
            assert 0.0 <= low <= row[metric] <= high <= 1.0, (metric, row)
        assert row["n_per_set"] == 4 and len(row["two_verdicts"]) == 4
    assert rows[-1]["train_seconds"] > 0 and results["encoders"]["clip"]["pretrain_seconds"] > 0
    assert set(results["token_probe"]) == set(b.ENCODERS)
    assert results["attention"]["pooled"]["words"] == ["<pooled>"] and len(results["attention"]["token"]["words"]) == 8
    assert results["remedies"]["encoder"] in ("token", "clip") and "bind" in results["remedies"]
    assert (out / b.ATTENTION_GRID).exists() and (out / b.SAMPLE_GRID).exists()
    saved = json.loads((out / "binding.json").read_text())["results"]
    assert [r["steps"] for r in saved["rows"]] == [r["steps"] for r in rows]
    # resume: the curves, the pretraining, the latent cache and the remedies are read back, not redone
    for name in ("measure_model", "pretrain_contrastive", "measure_remedy", "encode_images"):
        monkeypatch.setattr(b, name, _must_not_run(name))
    again = b.run(TOY, out_dir=out, work_dir=work, **TOY_RUN)
    assert again["rows"] == rows
    with pytest.raises(ValueError, match="measured with other settings"):  # a curve of 4 captions per set is not 8
        b.run(TOY, out_dir=out, work_dir=work, **{**TOY_RUN, "n": 8})


def _must_not_run(name):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a resumed run called {name} again")

    return refuse
