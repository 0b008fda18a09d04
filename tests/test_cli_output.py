"""What the commands print: one progress bar, sized from the start."""
from __future__ import annotations

import re
from pathlib import Path

from legacy_assistant.cli import main

TINY_INTENTS = Path(__file__).resolve().parent / "data" / "tiny_intents.json"


def test_train_shows_one_progress_bar_with_the_planned_epochs(tmp_path, capsys):
    # The default preset decides its epochs from a step budget once it has seen the data.
    assert main(["-q", "train", str(TINY_INTENTS), "--out", str(tmp_path / "m"), "--no-plot"]) == 0
    err = capsys.readouterr().err.replace("\r", "\n")
    totals = {int(total) for total in re.findall(r"training:.*?\d+/(\d+) \[", err)}
    assert len(totals) == 1 and totals != {1}, err[:500]
