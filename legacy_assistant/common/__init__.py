"""Files both model families read and write: JSON files with clear errors, PNG figures."""
