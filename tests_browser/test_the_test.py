"""The test of the browser test: break the rate panel's callback, and the browser test must fail.

Each case writes an IPython startup file that monkeypatches ``ldm_mini.lessons.widgets`` inside the
kernel (the package itself is untouched), then runs the lesson-01 browser test in a subprocess,
in its own scratch folder, and checks that it fails for the right reason:
- "raises": the callback raises on every move after the first draw (the traceback lands in the
  panel's output area, where a learner would see it);
- "stale": the callback runs but redraws the first figure again (what a panel wired to the
  wrong variable, or one that draws into another output, looks like).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import ROOT

BREAKS = {
    "raises": (
        """
import ldm_mini.lessons.widgets as _w
_real, _calls = _w.rate_view, []
def _broken_rate_view(image, keep):
    _calls.append(keep)
    if len(_calls) > 1:
        raise RuntimeError("rate_view broken on purpose by tests_browser/test_the_test.py")
    return _real(image, keep)
_w.rate_view = _broken_rate_view
""",
        ["shows an error", "broken on purpose"],
    ),
    "stale": (
        """
import ldm_mini.lessons.widgets as _w
_real, _first = _w.rate_view, {}
def _stale_rate_view(image, keep):
    if "view" not in _first:
        _first["view"] = _real(image, keep)
    return _first["view"]
_w.rate_view = _stale_rate_view
""",
        ["image did not change"],
    ),
}


@pytest.mark.parametrize("how", sorted(BREAKS))
def test_browser_test_fails_when_the_rate_callback_breaks(how, tmp_path):
    code, expected = BREAKS[how]
    startup = tmp_path / f"break_rate_panel_{how}.py"
    startup.write_text(code)
    env = dict(os.environ)
    env.update(
        LDM_BROWSER_STARTUP=str(startup),
        LDM_BROWSER_WORK=str(ROOT / "build" / f"browser-broken-{how}"),
        LDM_BROWSER_SCREENSHOTS=str(ROOT / "build" / f"screenshots-broken-{how}"),
        LDM_BROWSER_DOCS="0",
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
         str(Path(__file__).parent / "test_lessons_in_browser.py"), "-k", "test_01_rate_slider"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    out = run.stdout + run.stderr
    print(out[-3000:])
    assert run.returncode == 1, f"the browser test should fail (exit 1) with a broken callback ({how}), got exit {run.returncode}:\n{out[-3000:]}"
    assert "1 failed" in out and "test_01_rate_slider" in out, out[-3000:]
    for needle in expected:
        assert needle in out, f"the failure should say {needle!r}:\n{out[-3000:]}"
