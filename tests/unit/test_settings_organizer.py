"""LDFLOW_ORGANIZER: who organises the invites and to-dos the team sends."""

from __future__ import annotations

import pytest

from flows.settings import ConfigurationError, Settings, load_settings
from states.notifications import Recipient


@pytest.mark.parametrize(("value", "expected"), [
    (None, Recipient("Learning & Development", "ld-team@example.org")),
    ("", Recipient("Learning & Development", "ld-team@example.org")),
    ("Priya Shah <priya@example.org>", Recipient("Priya Shah", "priya@example.org")),
    ('"L&D, EMEA" <ld-emea@example.org>', Recipient("L&D, EMEA", "ld-emea@example.org")),
    ("ld-partners@example.org", Recipient("Learning & Development", "ld-partners@example.org")),
])
def test_the_organizer_from_the_setting_or_the_from_address(value: str | None, expected: Recipient) -> None:
    settings = Settings(mail_from="ld-team@example.org", organizer=value, _env_file=None)  # type: ignore[call-arg]
    assert settings.organizer_recipient == expected


@pytest.mark.parametrize("value", ["nobody", "Priya <priya@>", "a@example.org, b@example.org", "Eve\r\n <e@x.org>"])
def test_a_bad_organizer_is_a_configuration_error(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDFLOW_ORGANIZER", value)
    with pytest.raises(ConfigurationError, match="LDFLOW_ORGANIZER"):
        load_settings()
