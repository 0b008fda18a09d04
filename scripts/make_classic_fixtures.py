"""Make the classic-chatbot test fixtures once, with real Keras (run by hand, not by the tests).

Builds the classic recipe's model, ``Dense(128, relu) -> Dropout(0.5) -> Dense(64, relu) ->
Dropout(0.5) -> Dense(n, softmax)``, over the classic bag of words of ``tests/data/tiny_intents.json``,
trains it briefly, saves it the classic way (``model.save('....h5')``), and records Keras's own
predictions for a few sentences, so the importer is tested against files and numbers Keras made.

    .venv-tf2.15.1/bin/python scripts/make_classic_fixtures.py --force   # Keras 2 (TensorFlow 2.15)
    .venv/bin/python scripts/make_classic_fixtures.py --force            # Keras 3 (TensorFlow 2.21)

Writes ``tests/data/classic/keras<major>_chatbot_model.h5`` and ``keras<major>_expected.json``,
plus ``words.json``/``classes.txt``/``intents.json`` (the same for both), or into ``--out DIR``.
The fixtures are committed and the tests' expected numbers come from them: replacing them
takes ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "tests" / "data" / "classic"
SENTENCES = [
    "Hi there!",
    "can I order some tea?",
    "bye bye",
    "green please",
    "Hello. I want tea",
    "book a table, please",
    "nothing known here",
    "",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write the fixtures (default: {OUT})")
    parser.add_argument("--force", action="store_true", help="replace fixtures already there (the committed ones)")
    args = parser.parse_args(argv)
    out = args.out
    if (out / "words.json").exists() and not args.force:
        parser.error(f"{out} holds fixtures already (the committed ones, by default): pass --force to replace them")
    import keras
    import numpy as np
    import tensorflow as tf

    from legacy_assistant.classifier.intents import load_intents
    from legacy_assistant.text.processing import TextConfig, TextProcessor

    intents = load_intents(ROOT / "tests" / "data" / "tiny_intents.json")
    processor = TextProcessor(TextConfig(tokenizer="classic"))
    texts, tags = intents.examples()
    words = sorted({w for text in texts for w in processor.tokens(text) if w != "?"})  # classic ignore_words
    classes = sorted(set(tags))

    def bag(sentence: str) -> list[float]:
        tokens = set(processor.tokens(sentence))
        return [1.0 if w in tokens else 0.0 for w in words]

    x = np.array([bag(t) for t in texts], np.float32)
    y = keras.utils.to_categorical([classes.index(t) for t in tags], len(classes))
    tf.random.set_seed(5)
    model = keras.Sequential(
        [
            keras.Input(shape=(len(words),)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(len(classes), activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True))
    model.fit(x, y, epochs=30, batch_size=5, verbose=0)
    major = keras.__version__.split(".")[0]
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / f"keras{major}_chatbot_model.h5")
    probabilities = model.predict(np.array([bag(s) for s in SENTENCES], np.float32), verbose=0)
    (out / f"keras{major}_expected.json").write_text(
        json.dumps(
            {
                "keras": keras.__version__,
                "tensorflow": tf.__version__,
                "cases": [
                    {"text": s, "probabilities": [float(p) for p in row]} for s, row in zip(SENTENCES, probabilities)
                ],
            },
            indent=1,
        )
        + "\n"
    )
    (out / "words.json").write_text(json.dumps(words, indent=1) + "\n")
    (out / "classes.txt").write_text("\n".join(classes) + "\n")
    shutil.copy(ROOT / "tests" / "data" / "tiny_intents.json", out / "intents.json")
    print(f"keras {keras.__version__}: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
