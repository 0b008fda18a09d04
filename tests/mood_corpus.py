"""A toy dialogue corpus in which the condition alone decides the reply: every prompt is answered
once under each condition with that condition's fixed sentence. Tests of the responder train
tiny models on it (training, the Python API, the CLI, evaluation)."""
from __future__ import annotations

import json
from pathlib import Path

from legacy_assistant.responder.corpora import Dialogue, Turn

REPLIES = {
    "neutral": "it is ok .",
    "joy": "i am so happy !",
    "sadness": "that makes me sad .",
    "anger": "this is outrageous !",
    "fear": "i am scared of it .",
}
PROMPTS = [
    "how do you feel about the news ?",
    "what do you think of this ?",
    "tell me how you feel .",
    "the weather changed today .",
    "my team lost the game .",
    "we are moving to a new city .",
]
# Prompts the corpus never holds, for held-out sets.
HELD_OUT = [
    "did you see the film yesterday ?",
    "the shop is closed .",
    "how was the trip ?",
    "what about the weather ?",
    "the game is on tonight .",
    "tell me about the city .",
]


def dialogues(prompts: list[str] = PROMPTS, name: str = "mood") -> list[Dialogue]:
    """Each prompt answered once under every condition, as :class:`Dialogue` s."""
    return [
        Dialogue((Turn(prompt), Turn(reply, condition)), f"{name}#{i}-{condition}")
        for i, prompt in enumerate(prompts)
        for condition, reply in REPLIES.items()
    ]


def dialogue_line(prompt: str, condition: str) -> str:
    """One line of cakechat's training layout: the prompt, then ``condition``'s reply."""
    return json.dumps([{"text": prompt, "condition": "neutral"}, {"text": REPLIES[condition], "condition": condition}])


def write_corpus(path: Path, prompts: list[str] = PROMPTS) -> Path:
    """``prompts`` x every condition in cakechat's layout at ``path``; returns ``path``."""
    path.write_text("\n".join(dialogue_line(p, c) for p in prompts for c in REPLIES) + "\n", encoding="utf-8")
    return path
