"""The web app: one more entry point over the application (:mod:`flows.bootstrap`'s ``App``).

Routes are thin: they read the form or the query, call the same ``Service``/query as the CLI,
and render a Jinja2 template. No business logic and no SQL here.
"""
