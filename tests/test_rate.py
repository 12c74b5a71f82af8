import math

import pytest
import torch

from ldm_mini.rate import (
    bits_per_dim_dct,
    bits_per_dim_downsample,
    bits_per_dim_kl,
    bits_per_dim_raw,
    bits_per_dim_vq,
    bits_per_dim_vq_entropy,
    code_entropy_bits,
    dct2,
    dct_matrix,
    dct_truncate,
    downsample_upsample,
    idct2,
)


def test_bits_per_dim_known_cases():
    assert bits_per_dim_raw() == 8.0
    assert bits_per_dim_vq(8, 8, 256, 32, 32) == pytest.approx(8 * 8 * 8 / (32 * 32 * 3))
    assert bits_per_dim_vq(8, 8, 256, 32, 32) == pytest.approx(0.16667, abs=1e-5)
    assert bits_per_dim_kl(0.0, 32, 32) == 0.0
    assert bits_per_dim_kl(torch.tensor([3072 * math.log(2)] * 2), 32, 32) == pytest.approx(1.0)
    assert bits_per_dim_dct(8, 32, 32) == pytest.approx(0.5)  # 64 coeffs x 8 bits / 1024 pixels
    assert bits_per_dim_dct(32, 32, 32) == 8.0  # everything kept: the raw rate
    assert bits_per_dim_dct(16, 16, 12) == 8.0
    assert bits_per_dim_downsample(4) == 0.5


def test_vq_entropy_bound():
    K = 256
    uniform = torch.arange(K).view(4, 8, 8)  # every code once: entropy = log2 K
    assert bits_per_dim_vq_entropy(uniform, K, 32, 32) == pytest.approx(bits_per_dim_vq(8, 8, K, 32, 32))
    half = torch.tensor([0, 1] * 32).view(1, 8, 8)  # two codes, equally often: 1 bit per code
    assert code_entropy_bits(half, K) == pytest.approx(1.0)
    assert bits_per_dim_vq_entropy(half, K, 32, 32) == pytest.approx(64 / 3072)
    assert bits_per_dim_vq_entropy(torch.zeros(2, 8, 8, dtype=torch.long), K, 32, 32) == 0.0
    with pytest.raises(ValueError, match=r"\(b, h, w\)"):
        bits_per_dim_vq_entropy(torch.zeros(64, dtype=torch.long), K, 32, 32)


def test_dct_matrix_orthonormal_and_known_values():
    C = dct_matrix(8, torch.float64)
    assert torch.allclose(C @ C.T, torch.eye(8, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(C[0], torch.full((8,), 1 / math.sqrt(8), dtype=torch.float64))
    assert C[1, 0].item() == pytest.approx(0.5 * math.cos(math.pi / 16))
    # a constant signal has only a DC coefficient
    coeffs = dct2(torch.ones(1, 4, 6, dtype=torch.float64))
    assert coeffs[0, 0, 0].item() == pytest.approx(math.sqrt(24))
    assert coeffs.abs().sum().item() == pytest.approx(math.sqrt(24))


def test_dct_round_trip_and_energy():
    torch.manual_seed(0)
    img = torch.rand(2, 3, 16, 12, dtype=torch.float64)
    coeffs = dct2(img)
    assert torch.allclose(idct2(coeffs), img, atol=1e-12)
    assert torch.allclose(coeffs.pow(2).sum(), img.pow(2).sum())  # Parseval
    assert torch.allclose(dct_truncate(img, 16), img, atol=1e-12)  # keep everything: exact
    assert not torch.allclose(dct_truncate(img, 12), img, atol=1e-3)
    low = dct_truncate(img, 4)
    # truncation removes exactly the energy of the dropped coefficients
    kept = coeffs[..., :4, :4].pow(2).sum()
    assert low.pow(2).sum().item() == pytest.approx(kept.item())
    with pytest.raises(ValueError, match="keep=17"):
        dct_truncate(img, 17)


def test_downsample_upsample():
    img = torch.rand(1, 3, 8, 8)
    assert downsample_upsample(img, 1).shape == img.shape
    assert torch.allclose(downsample_upsample(img, 1), img, atol=1e-6)
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert torch.allclose(downsample_upsample(flat, 4), flat, atol=1e-6)
    with pytest.raises(ValueError, match="not divisible"):
        downsample_upsample(img, 3)
