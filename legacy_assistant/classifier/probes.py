"""Generated probe sentences: many varied inputs, the same list for the same seed.

Parity checks (two runtimes, two TensorFlow versions, a migrated model and its source) compare
predictions on the golden sentences *and* on these: shuffled mixes of known words, vocabulary
terms, unknown words, punctuation and case, including empty and unknown-only sentences (which
exercise the bias-only path).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

UNKNOWN_WORDS = ("zyzzyva", "qwertz", "flibber", "xylograph", "blorp")
PUNCTUATION = ("?", "!", ".", ",", "...")


def probe_sentences(seed_texts: Sequence[str], vocabulary: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """``n`` sentences of 0-9 words drawn from ``seed_texts``' words, ``vocabulary`` and unknown words."""
    rng = random.Random(seed)
    words = sorted({w for text in seed_texts for w in text.split()})
    terms = sorted({t for t in vocabulary if t and " " not in t and not t.startswith("#")})
    pools = [pool for pool in (words, terms, list(UNKNOWN_WORDS)) if pool]
    sentences = []
    for _ in range(n):
        length = rng.randint(0, 9)
        tokens = [rng.choice(rng.choice(pools)) for _ in range(length)]
        if tokens and rng.random() < 0.3:
            tokens[0] = tokens[0].capitalize()
        if rng.random() < 0.2:
            tokens = [t.upper() for t in tokens]
        text = " ".join(tokens)
        if rng.random() < 0.4:
            text += rng.choice(PUNCTUATION)
        sentences.append(text)
    return sentences
