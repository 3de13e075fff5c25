"""The web UI's CSRF check: the session's own token passes; anything else is a 403, never a server error."""

from __future__ import annotations

import pytest

from serving.ui.sessions import Forbidden, Session, check_csrf

SESSION = Session("sid", "kid", "admin", "tok-ABC_123")


def test_the_sessions_own_csrf_token_passes() -> None:
    check_csrf(SESSION, "tok-ABC_123")


@pytest.mark.parametrize("token", [None, "", "tok-ABC_12", "tok-ABC_1234", "tök-ABC_123", "☃" * 11])
def test_a_missing_wrong_or_non_ascii_csrf_token_is_forbidden(token: str | None) -> None:
    with pytest.raises(Forbidden) as refused:
        check_csrf(SESSION, token)
    assert refused.value.status_code == 403 and refused.value.code == "csrf_failed"
