"""Text processing shared by both model families: NLTK tokenizing and stemming that need no data."""
