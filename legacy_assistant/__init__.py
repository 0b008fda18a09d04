"""legacy-assistant: an intent-classifier chatbot trained and served with tf.compat.v1 graphs.

Its fallback can be a generative, emotion-conditioned responder.

Where to start in Python (README, "In Python"):

- ``legacy_assistant.classifier.predictor.Predictor``: ``Predictor.load(dir)`` ranks intents.
- ``legacy_assistant.responder.responder.Responder``: ``Responder.load(dir)`` generates replies.
- ``legacy_assistant.serving.assistant.Assistant``: ``Assistant.load(dir)`` holds the dialogue,
  as the server runs it; its turns go to a store from ``legacy_assistant.stores.base.open_store``.
- ``legacy_assistant.web.app.create_app``: the Flask app the server runs.
- ``legacy_assistant.errors``: the errors these raise on purpose.

The command line is ``python -m legacy_assistant --help``.
"""

__version__ = "0.1.0"
