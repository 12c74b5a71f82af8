"""Drive the lessons in a real JupyterLab with a real (headless) Chromium, as a learner would.

Two parts:
- ``LabServer`` starts ``jupyter lab`` on localhost with a random token, in a scratch folder
  (copies of the notebooks, its own settings, workspaces, IPython profile), so a run never
  touches the repository's notebooks or the user's Jupyter set-up. The kernel is the "Python 3"
  kernel of the interpreter running this code: the project's virtual environment.
- ``LessonPage`` wraps one open notebook in a Playwright page: run all cells, find the cells
  that show an error, find a widget panel, move its controls like a mouse does, and time how
  long the panel takes to show its new figure.

Chromium: Debian's ``/usr/bin/chromium`` (Playwright's own browsers cannot be downloaded here);
set ``LDM_CHROMIUM`` to use another binary.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Overridable so that the test of the test can run beside a real run without touching its files.
BUILD = Path(os.environ.get("LDM_BROWSER_WORK", ROOT / "build" / "browser"))
SCREENSHOTS = Path(os.environ.get("LDM_BROWSER_SCREENSHOTS", ROOT / "build" / "screenshots"))


def chromium_path() -> str | None:
    """The Chromium binary to drive, or None when there is none."""
    for candidate in (os.environ.get("LDM_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """``jupyter lab`` in a scratch folder ``work`` (``with LabServer(...) as lab:``).

    notebooks: the lesson files to copy in (served from ``work/root/notebooks/``, so the
        lessons' relative paths like ``../runs`` land in the scratch folder too).
    startup: optional Python files copied into the kernel's IPython startup folder; the
        test of the test uses one to break a panel's callback from outside the package.
    """

    notebooks: list[Path]
    work: Path = BUILD
    startup: list[Path] = field(default_factory=list)
    port: int = 0
    token: str = ""

    def __enter__(self) -> "LabServer":
        if self.work.exists():
            shutil.rmtree(self.work)
        root = self.work / "root" / "notebooks"
        root.mkdir(parents=True)
        for nb in self.notebooks:
            shutil.copy(nb, root / nb.name)
        settings = self.work / "settings"
        # Keep every cell in the page (no virtual scrolling), so the panels can be found and moved.
        tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
        tracker.parent.mkdir(parents=True)
        tracker.write_text(json.dumps({"windowingMode": "none"}))
        # No announcements pop-up (it would ask for network access and cover the notebook).
        news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        news.parent.mkdir(parents=True)
        news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        ipython = self.work / "ipython"
        startup_dir = ipython / "profile_default" / "startup"
        startup_dir.mkdir(parents=True)
        for i, file in enumerate(self.startup):
            shutil.copy(file, startup_dir / f"{i:02d}-{Path(file).name}")

        self.port = self.port or _free_port()
        self.token = self.token or secrets.token_hex(16)
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(self.work / "config"),
            JUPYTER_DATA_DIR=str(self.work / "data"),
            JUPYTER_RUNTIME_DIR=str(self.work / "runtime"),
            IPYTHONDIR=str(ipython),
            # The kernel imports ldm_mini from this checkout (as `pip install -e .` would).
            PYTHONPATH=os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])),
            LDM_PROGRESS="0",
        )
        command = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser",
            f"--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.work / 'root'}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={self.work / 'workspaces'}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run commands, read cell models
            "--LabApp.news_url=",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # CI containers often run as root
        self.log_path = self.work / "jupyter.log"
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.work)
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self.process.returncode}; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"jupyter lab did not answer on port {self.port} within 90 s; see {self.log_path}")
            time.sleep(0.5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        # A fresh workspace ("?reset"), so no earlier layout is restored.
        return f"{self.url}/lab/workspaces/test/tree/notebooks/{name}?reset&token={self.token}"

    def shutdown_kernels(self):
        """Stop every kernel (between lessons, so a finished lesson's models do not hold memory)."""
        def call(method, path):
            req = urllib.request.Request(f"{self.url}{path}?token={self.token}", method=method)
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.read()

        for kernel in json.loads(call("GET", "/api/kernels")):
            call("DELETE", f"/api/kernels/{kernel['id']}")

    def __exit__(self, *exc):
        if getattr(self, "process", None) and self.process.poll() is None:
            self.process.terminate()  # the server shuts its kernels down on SIGTERM
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if getattr(self, "_log", None):
            self._log.close()


# ------------------------------------------------------------------------------ one notebook page

# A panel's output area (an ipywidgets Output) and what it shows: every image's src, the text it
# printed, and any traceback (an exception inside `with out:` lands there, not in the cell).
_PANEL_STATE_JS = """
(cell) => {
  const outs = [...cell.querySelectorAll('.widget-output')];
  const imgs = outs.flatMap(o => [...o.querySelectorAll('img')]).map(i => i.getAttribute('src') || '');
  const texts = outs.flatMap(o => [...o.querySelectorAll('[data-mime-type="application/vnd.jupyter.stdout"]')]).map(e => e.innerText);
  const errors = outs.flatMap(o => [...o.querySelectorAll('.jp-RenderedText:not([data-mime-type="application/vnd.jupyter.stdout"])')])
                     .map(e => e.innerText).filter(t => /Traceback|Error/.test(t));
  return {imgs, text: texts.join('\\n'), errors};
}
"""


@dataclass
class Redraw:
    """One interaction: what was done, how long until the new figure showed, and the text before and after."""

    action: str
    seconds: float
    before: str
    after: str


class PanelError(AssertionError):
    """The panel did not do what a learner expects."""


class LessonPage:
    """One lesson open in JupyterLab in a Playwright ``page``."""

    def __init__(self, page, lab: LabServer, name: str):
        self.page, self.lab, self.name = page, lab, name

    def open(self, timeout_s: float = 120):
        self.page.goto(self.lab.notebook_url(self.name))
        # The notebook is open and its kernel (the project's "Python 3") has started and is idle.
        self.page.wait_for_function(
            """(name) => {
                 const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                 if (!w || !w.context || !w.context.path.endsWith(name)) return false;
                 const k = w.sessionContext.session && w.sessionContext.session.kernel;
                 return !!k && k.status === 'idle';
               }""",
            arg=self.name, timeout=timeout_s * 1000, polling=250,
        )

    def command(self, name: str):
        return self.page.evaluate("(c) => window.jupyterapp.commands.execute(c).then(() => true)", name)

    def run_all(self, timeout_s: float = 600) -> float:
        """Clear the saved outputs, then Run > Run All Cells; wait until the kernel is done. Returns seconds."""
        self.command("notebook:clear-all-cell-outputs")
        start = time.perf_counter()
        self.page.evaluate(
            """() => { window.__runAll = 'running';
                        window.jupyterapp.commands.execute('notebook:run-all-cells')
                          .then(ok => { window.__runAll = ok ? 'ok' : 'stopped'; },
                                e => { window.__runAll = 'failed: ' + e; }); }"""
        )
        self.page.wait_for_function("() => window.__runAll !== 'running'", timeout=timeout_s * 1000, polling=500)
        # Run All resolves when the last cell replies; let the kernel finish its last messages.
        self.page.wait_for_function(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
            timeout=60_000, polling=250,
        )
        return time.perf_counter() - start

    def cell_report(self) -> list[dict]:
        """Every code cell: its first line, execution count, and any error output (name: value)."""
        return self.page.evaluate(
            """() => window.jupyterapp.shell.currentWidget.content.widgets
                 .filter(c => c.model.type === 'code')
                 .map(c => ({
                   first_line: c.model.sharedModel.getSource().split('\\n').find(l => l.trim() && !l.startsWith('#')) || '',
                   count: c.model.executionCount,
                   errors: c.model.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
                 }))"""
        )

    def check_no_errors(self):
        cells = self.cell_report()
        broken = [c for c in cells if c["errors"]]
        if broken:
            raise PanelError(f"{self.name}: cells show errors: " + "; ".join(f"{c['first_line'][:60]!r} -> {c['errors']}" for c in broken))
        never = [c["first_line"][:60] for c in cells if c["count"] is None]
        if never:
            raise PanelError(f"{self.name}: {len(never)} code cells never ran, first {never[0]!r}")
        # A traceback printed inside any widget's output area is an error the learner sees too.
        errors = self.page.evaluate(
            """() => [...document.querySelectorAll('.widget-output .jp-RenderedText:not([data-mime-type="application/vnd.jupyter.stdout"])')]
                 .map(e => e.innerText).filter(t => /Traceback|Error/.test(t))"""
        )
        if errors:
            raise PanelError(f"{self.name}: a widget shows an error:\n{errors[0][-1500:]}")

    # ---------------------------------------------------------------------- panels

    def _label(self, label: str):
        return self.page.locator(".widget-label", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))

    def panel_cell(self, label: str):
        """The notebook cell whose widgets include a control described by ``label``."""
        cell = self.page.locator(".jp-CodeCell").filter(has=self._label(label))
        if cell.count() != 1:
            raise PanelError(f"{self.name}: expected one cell with a control labelled {label!r}, found {cell.count()}")
        cell.scroll_into_view_if_needed()
        return cell

    def panel_state(self, cell) -> dict:
        return cell.evaluate(_PANEL_STATE_JS)

    def wait_for_settled_figure(self, cell, timeout_s: float = 30) -> dict:
        """Wait until the panel shows exactly one figure and some text, then return its state."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.panel_state(cell)
            if state["errors"]:
                raise PanelError(f"{self.name}: the panel shows an error:\n{state['errors'][0][-1500:]}")
            if len(state["imgs"]) == 1 and state["text"].strip():
                return state
            if time.monotonic() > deadline:
                raise PanelError(f"{self.name}: the panel should show one figure and one line of numbers, shows {len(state['imgs'])} figures and text {state['text']!r}")
            time.sleep(0.1)

    def timed(self, cell, action: str, do, timeout_s: float = 30) -> Redraw:
        """Do ``do()`` (a mouse action on the panel) and time until the panel shows a new figure and new text.

        Fails when the panel shows a traceback, when nothing changes within ``timeout_s``, and
        when figures stack up (more than one after the redraw) instead of replacing each other.
        """
        before = self.wait_for_settled_figure(cell)
        do()  # returns when the mouse button is released: the clock starts where the learner's wait does
        start = time.perf_counter()
        deadline = start + timeout_s
        while True:
            state = self.panel_state(cell)
            if state["errors"]:
                raise PanelError(f"{self.name}: after {action}, the panel shows an error:\n{state['errors'][0][-1500:]}")
            new_img = any(src != before["imgs"][0] for src in state["imgs"]) and state["imgs"]
            if new_img and state["text"].strip() and state["text"] != before["text"]:
                seconds = time.perf_counter() - start
                break
            if time.perf_counter() > deadline:
                what = "image" if not new_img else "printed numbers"
                raise PanelError(f"{self.name}: after {action}, the panel's {what} did not change within {timeout_s:.0f} s "
                                 f"(text before {before['text']!r}, now {state['text']!r})")
            time.sleep(0.05)
        self.page.wait_for_timeout(500)  # a stacked figure would arrive right after the first one
        after = self.wait_for_settled_figure(cell)
        if len(after["imgs"]) != 1:
            raise PanelError(f"{self.name}: after {action}, {len(after['imgs'])} figures are stacked in the panel")
        return Redraw(action, seconds, before["text"], after["text"])

    def drag_slider(self, cell, label: str, fraction: float):
        """Drag the handle of the slider described by ``label`` to ``fraction`` of its track."""
        slider = cell.locator(".widget-slider").filter(has=self._label(label))
        track = slider.locator(".noUi-target").bounding_box()
        handle = slider.locator(".noUi-handle").bounding_box()
        x0, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
        x1 = track["x"] + fraction * track["width"]
        self.page.mouse.move(x0, y)
        self.page.mouse.down()
        for k in range(1, 9):  # a few intermediate moves, like a hand
            self.page.mouse.move(x0 + (x1 - x0) * k / 8, y)
        self.page.mouse.up()

    def slider_readout(self, cell, label: str) -> str:
        slider = cell.locator(".widget-slider").filter(has=self._label(label))
        return slider.locator(".widget-readout").inner_text()

    def click_toggle(self, cell, label: str, option: str):
        group = cell.locator(".widget-toggle-buttons").filter(has=self._label(label))
        group.locator("button.widget-toggle-button", has_text=re.compile(rf"^\s*{re.escape(option)}\s*$")).click()

    def screenshot(self, cell, name: str, docs: Path | None = None):
        """Full page and the panel's cell to build/screenshots/; the panel also to ``docs`` (for the README)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}_page.png"))
        outputs = cell.locator(".jp-Cell-outputWrapper")
        outputs.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
        if docs is not None:  # the README's copy: an adaptive 128-colour palette keeps it small
            from PIL import Image

            docs.mkdir(parents=True, exist_ok=True)
            with Image.open(SCREENSHOTS / f"{name}.png") as im:
                im.convert("RGB").quantize(colors=128).save(docs / f"{name}.png", optimize=True)


def number(text: str, key: str) -> float:
    """The number after ``key`` in a panel's printed line, e.g. number('..., PSNR 24.1 dB', 'PSNR') -> 24.1."""
    m = re.search(rf"{re.escape(key)}\s*=?\s*(-?[0-9]+(?:\.[0-9]+)?)", text)
    if not m:
        raise PanelError(f"no {key!r} in the panel's printed line {text!r}")
    return float(m.group(1))
