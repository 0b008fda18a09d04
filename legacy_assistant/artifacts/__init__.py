"""Model directories shared by both model families: atomic writes, checksums, verification."""
