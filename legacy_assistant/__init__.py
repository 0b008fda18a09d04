"""legacy-assistant: an intent-classifier chatbot trained and served with tf.compat.v1 graphs."""

__version__ = "0.1.0"
