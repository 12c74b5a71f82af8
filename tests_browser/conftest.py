"""Fixtures of the browser tests: one JupyterLab server and one headless Chromium for the session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lab import ROOT, SCREENSHOTS, LabServer, chromium_path

LESSONS = ["01_rate_distortion.ipynb", "02b_latent_space.ipynb", "06_sampling.ipynb"]
# Extra IPython startup files for the kernel (os.pathsep-separated); the test of the test sets it.
STARTUP_ENV = "LDM_BROWSER_STARTUP"
# Where each interaction's redraw time goes (a JSON file per lesson), for the note and the report.
TIMINGS = SCREENSHOTS / "timings"


@pytest.fixture(scope="session")
def lab():
    startup = [Path(p) for p in os.environ.get(STARTUP_ENV, "").split(os.pathsep) if p]
    with LabServer([ROOT / "notebooks" / name for name in LESSONS], startup=startup) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        pytest.fail("no Chromium: install Debian's `chromium` (apt-get install chromium; `make test-browser` does) "
                    "or set LDM_CHROMIUM to a Chromium binary. Playwright's own browser download is not used.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=["--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, lab):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()
    lab.shutdown_kernels()


@pytest.fixture
def record_timings(request):
    """Call with a list of Redraw; written to build/screenshots/timings/<test>.json."""

    def record(redraws, extra=None):
        TIMINGS.mkdir(parents=True, exist_ok=True)
        rows = [{"action": r.action, "seconds": round(r.seconds, 3), "before": r.before, "after": r.after} for r in redraws]
        (TIMINGS / f"{request.node.name}.json").write_text(json.dumps({"redraws": rows, **(extra or {})}, indent=1))
        for r in redraws:
            print(f"{request.node.name}: {r.action}: redrawn in {r.seconds:.2f} s")

    return record
