"""Training history as a PNG (loss and accuracy per epoch)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_history(history: Sequence[dict[str, Any]], path: str | Path, title: str = "training history") -> None:
    """Write a two-panel figure: loss and accuracy per epoch, validation dashed where present."""
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display on servers and CI
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for axis, key, label in ((loss_axis, "loss", "loss"), (accuracy_axis, "accuracy", "accuracy")):
        axis.plot(epochs, [row[key] for row in history], label=f"train {label}")
        if history and f"val_{key}" in history[0]:
            axis.plot(epochs, [row[f"val_{key}"] for row in history], "--", label=f"validation {label}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    # Fixed metadata keeps the file byte-identical for identical histories.
    figure.savefig(path, format="png", metadata={"Software": None})
    plt.close(figure)
