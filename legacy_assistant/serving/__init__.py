"""Serving shared by both model families: the dialogue policy, the assistant service, hot swap, gunicorn."""
