"""NSQSettingError: the client names the option; whoever configured it words the fix."""

from __future__ import annotations

from almanet._broker.broker import setting_hint, translate_nsq_error
from almanet._nsq.errors import NSQHandshakeError, NSQSettingError, template_text


def _error() -> NSQSettingError:
    address = template_text("weird{host}:4150")
    return NSQSettingError(f"nsqd at {address} requires AUTH: set {{auth_secret}}{{where}}", setting="auth_secret")


def test_the_client_words_the_fix_in_its_own_option_names() -> None:
    error = _error()
    assert isinstance(error, NSQHandshakeError) and error.setting == "auth_secret"
    assert str(error) == "nsqd at weird{host}:4150 requires AUTH: set ConnectionOptions.auth_secret"
    assert "almanet" not in str(error)


def test_the_broker_words_it_in_almanet_toml_terms() -> None:
    error = _error()
    assert setting_hint(error) == "nsqd at weird{host}:4150 requires AUTH: set auth.secret in almanet.toml"
    translated = translate_nsq_error(error, "cannot join")
    assert str(translated) == "cannot join: " + setting_hint(error)
    assert "Is nsqd running" not in str(translated)
