"""The engines' own argument parsers, each a script run by the engine's Python interpreter.

The launcher lives in a venv of its own inside each engine's image (so the engine's environment stays
as its upstream image built it), where the engine's package cannot be imported; so each check is a
self-contained script (the standard library and the engine's package only) that the launcher runs
with the image's ``python3``: JSON ``{"argvs": [ARGV, ...]}`` on stdin, each ARGV a whole command
line as the launcher would start it; JSON ``{"refusals": [MESSAGE or null, ...]}`` on stdout, the
engine's own message for each ARGV it refuses. Exit status 3 (message on stderr) when the engine's
parser cannot be imported. ``modelfleet_serve.engines.parser_check`` runs them; what they share is
``modelfleet_parser_protocol``, which they import as a sibling.
"""
