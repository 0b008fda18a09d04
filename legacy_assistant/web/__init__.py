"""The web service: the Flask app and its blueprints.

* :mod:`.app`: the factory, :func:`create_app` (re-exported here);
* :mod:`.context`: what views use of the app in service (the assistant slot, metrics);
* :mod:`.security`: the access classes each blueprint declares, tokens, CORS;
* the blueprints: :mod:`.api`, :mod:`.classic`, :mod:`.rasa`, :mod:`.admin`, :mod:`.pages`,
  :mod:`.openapi`, :mod:`.observability`; :mod:`.errors` and :mod:`.metrics` beside them.

Modules of this package import from one another's modules, never from the package itself,
which imports the factory, which imports them.
"""

from __future__ import annotations

from legacy_assistant.web.app import create_app

__all__ = ["create_app"]
