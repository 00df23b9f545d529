"""E-mail connectors: rendering, SMTP out, IMAP and drop-folder in, reply parsing.

See ``connectors/email/README.md`` for the template context keys and the
outbox policies.
"""
