"""The TensorFlow boundary of legacy-assistant.

Everything that depends on the TensorFlow version lives in this package, and it is the only
package that imports TensorFlow. The rest of the project hands it numpy arrays and plain
Python values and gets numpy arrays back, so a move to another TensorFlow release (or to
TF2-native code) changes this folder and little else.

Submodules are imported explicitly (``from compat import runtime``) so that code which never
touches a model (intents validation, the dialogue policy) does not pay TensorFlow's import time.
"""
