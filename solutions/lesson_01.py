"""Reference solutions of lesson 01's exercises (try them first)."""

import torch


def solution_1():
    from ldm_mini.data import photo
    from ldm_mini.eval import psnr
    from ldm_mini.rate import bits_per_dim_dct, dct_truncate

    big = torch.from_numpy(photo("astronaut", 128)[:128, :128].copy()).permute(2, 0, 1).float() / 255
    for k in range(1, 129):
        rec = dct_truncate(big.double(), k).float().clamp(0, 1)
        if psnr(big[None], rec[None]) >= 30:
            return bits_per_dim_dct(k, 128, 128)


def solution_2():
    def subsample_upsample(images: torch.Tensor, f: int) -> torch.Tensor:
        kept = images[..., ::f, ::f]  # the top-left pixel of each f x f block
        return kept.repeat_interleave(f, dim=-2).repeat_interleave(f, dim=-1)

    return subsample_upsample


def solution_3():
    import ldm_mini
    from ldm_mini.data import attribute_labels, images_uint8, load_shapes
    from ldm_mini.eval import classifier_accuracy
    from ldm_mini.rate import downsample_upsample

    val = load_shapes(1000, "val", seed=0)
    x = images_uint8(val).float() / 255
    rec = (downsample_upsample(x, 4).clamp(0, 1) * 255).round().to(torch.uint8)
    acc = classifier_accuracy(ldm_mini.load_pretrained("attribute-classifier"), rec, attribute_labels(val))
    print({k: round(v, 2) for k, v in acc.items()})  # shape1 falls first
    return "shape"
