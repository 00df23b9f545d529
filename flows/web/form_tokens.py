"""Form tokens for the pages people use without signing in (the intake form, the link pages).

A token is signed (``itsdangerous``, key ``secret_key(keys_dir, "forms")``) and names its form and
what the form is bound to (the link's id; ``ask`` for the intake form); it is good for
``MAX_AGE``. A cross-site page can neither read a token from our pages nor make one, so its POST
fails. These pages keep no session, so the token travels in the form and nowhere else.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadData, URLSafeTimedSerializer

from connectors.keys import secret_key
from flows.settings import Settings

MAX_AGE = 4 * 3600  # seconds: a form left open over lunch still submits


class FormTokens:
    def __init__(self, settings: Settings) -> None:
        self._signer = URLSafeTimedSerializer(secret_key(settings.keys_dir, "forms"), salt="ldflow.form.v1")

    def issue(self, form: str, binding: str) -> str:
        return str(self._signer.dumps({"f": form, "b": binding, "n": secrets.token_hex(4)}))

    def valid(self, token: str, form: str, binding: str) -> bool:
        try:
            data = self._signer.loads(token, max_age=MAX_AGE)
        except BadData:
            return False
        return isinstance(data, dict) and data.get("f") == form and data.get("b") == binding
