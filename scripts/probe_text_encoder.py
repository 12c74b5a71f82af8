"""Is tau_theta a bag of words? For all "a C1 S1 and a C2 S2" captions: how alike a colour word's
context vector is in the first and in the second phrase, and whether the first shape word's vector
tells its OWN colour from the OTHER one (linear probe, half the captions to fit, half to test).

    .venv/bin/python scripts/probe_text_encoder.py shipped:0 baseline:1000 posinit1:1000
"""

import itertools
import sys
from pathlib import Path

import numpy as np
import torch
from binding_grid import load_run

from ldm_mini.data import COLOURS, SHAPES
from ldm_mini.zoo import load_pretrained

torch.set_num_threads(1)

cols, shps = list(COLOURS), list(SHAPES)
meta = [(c1, s1, c2, s2) for c1, c2 in itertools.permutations(cols, 2) for s1, s2 in itertools.permutations(shps, 2)]
caps = [f"a {a} {b} and a {c} {d}" for a, b, c, d in meta]
for spec in sys.argv[1:]:  # NAME:STEP of explore_binding.py runs, or shipped:0
    name, step = spec.split(":")
    ldm = (
        load_pretrained("shapes-kl-f4") if name == "shipped" else load_run(Path("/work/runs_binding") / name, int(step))
    )
    with torch.no_grad():
        ctx, _ = ldm.context(ldm.tokenizer(caps))
    def n(v):
        return torch.nn.functional.normalize(v, dim=0)

    first = {c: n(ctx[[i for i, m in enumerate(meta) if m[0] == c], 2].mean(0)) for c in cols}
    second = {c: n(ctx[[i for i, m in enumerate(meta) if m[2] == c], 6].mean(0)) for c in cols}
    X = ctx[:, 3].numpy()

    def probe(y):
        labels = sorted(set(y))
        Y = np.stack([(np.array(y) == label).astype(float) for label in labels], 1)
        idx = np.random.default_rng(0).permutation(len(X))
        tr, te = idx[: len(X) // 2], idx[len(X) // 2 :]
        Xb = np.c_[X, np.ones(len(X))]
        W = np.linalg.lstsq(Xb[tr], Y[tr], rcond=None)[0]
        return (np.array(labels)[(Xb[te] @ W).argmax(1)] == np.array(y)[te]).mean()

    pos, tok = ldm.text_encoder.pos_emb.detach(), ldm.text_encoder.token_emb.weight.detach()
    cosine = np.mean([(first[c] @ second[c]).item() for c in cols])
    own, other = probe([m[0] for m in meta]), probe([m[2] for m in meta])
    print(
        f"{spec}: cos(colour word in phrase 1, same word in phrase 2) {cosine:.3f}; "
        f"probe of shape-1 vector: own colour {own:.2f}, other colour {other:.2f}; "
        f"|pos| {pos.norm(dim=1).mean():.2f} |tok| {tok.norm(dim=1).mean():.2f}"
    )
