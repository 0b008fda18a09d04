"""Conversation stores: the interface and the in-memory, SQLite and Redis implementations."""
