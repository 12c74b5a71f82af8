"""The panels print their numbers as one line of text under the figure (what the browser test reads).

Outside a kernel an ipywidgets Output is a plain context manager, so the lines reach stdout here.
"""

import re

import torch

import ldm_mini.lessons.widgets as widgets
from ldm_mini.lessons.widgets import rate_panel, rate_view


def test_rate_panel_prints_the_views_numbers_and_reprints_on_a_move(monkeypatch, capsys):
    monkeypatch.setattr(widgets.plt, "show", lambda: widgets.plt.close("all"))
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    panel = rate_panel({"noise": image}, keep=4)
    slider = panel.children[0].children[1]
    slider.value = 2
    lines = [row for row in capsys.readouterr().out.splitlines() if row.startswith("noise:")]
    assert len(lines) == 2
    for line, k in zip(lines, (4, 2)):
        view = rate_view(image, k)
        assert line == f"noise: keep {k} x {k}, rate {view['bits_per_dim']:.4f} bits/dim, PSNR {view['psnr']:.2f} dB"
    rates = [float(re.search(r"rate ([0-9.]+)", row).group(1)) for row in lines]
    assert rates[1] < rates[0]  # fewer kept frequencies, fewer bits
    widgets.plt.close("all")
