"""The playground: a local web page (gradio) to try the intent model and the responder by hand.

``legacy-assistant playground`` serves it. :mod:`legacy_assistant.playground.handlers` answers
the page's requests without gradio; :mod:`legacy_assistant.playground.app` lays the page out and
serves it. gradio is the optional extra ``playground``: nothing else in the project imports it.
"""
