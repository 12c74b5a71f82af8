"""The ldm-mini command line, on the shipped checkpoints."""

import subprocess
import sys

import pytest
from PIL import Image

from ldm_mini.cli import build_parser, main

COMMANDS = ("data", "train-ae", "train-ldm", "sample", "eval", "pretrained")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([command, "--help"])
    assert done.value.code == 0
    assert "usage: ldm-mini " + command in capsys.readouterr().out


def test_sample_writes_a_png_with_the_shipped_model(tmp_path):
    out = tmp_path / "x.png"
    assert main(["sample", "a red circle", "-o", str(out), "--n", "2", "--steps", "10"]) == 0
    image = Image.open(out)
    assert image.size == (2 * 32 * 4, 32 * 4)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "a red car"], "car"),
        (["sample", "a red circle", "--guidance", "-2"], "guidance"),
        (["sample", "a red circle", "--eta", "2"], "eta"),
        (["sample", "a red circle", "--steps", "5000"], "T=1000"),
        (["sample", "a red circle", "--model", "no-such-model"], "no shipped checkpoint"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(argv, message, tmp_path, capsys):
    assert main(argv + ["-o", str(tmp_path / "y.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and "Traceback" not in err


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "ldm_mini", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "sample" in result.stdout
