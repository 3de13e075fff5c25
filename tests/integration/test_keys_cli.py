"""`centric keys create | list | revoke` on a real Redis (the CLI opens it through ``training.redis_session``)."""

from __future__ import annotations

import redis
from typer.testing import CliRunner

from recsys.store.keys import Keys
from serving.auth import list_api_keys
from training.cli import app


def test_a_created_key_is_listed_by_id_and_revoked_once(redis_url: str, keys: Keys, redis_client: redis.Redis) -> None:
    env = {"CENTRIC_REDIS_URL": redis_url, "CENTRIC_ENV": keys.env}
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--scope", "write", "--name", "till 3"], env=env)
    assert created.exit_code == 0, created.output
    [stored] = list_api_keys(redis_client, keys)  # written under the namespace of CENTRIC_ENV
    assert (stored["scope"], stored["name"]) == ("write", "till 3")
    listed = runner.invoke(app, ["keys", "list"], env=env)
    assert listed.exit_code == 0 and stored["id"] in listed.output
    assert "revoked" in runner.invoke(app, ["keys", "revoke", stored["id"]], env=env).output
    assert f"no key with id {stored['id']}" in runner.invoke(app, ["keys", "revoke", stored["id"]], env=env).output
    assert list_api_keys(redis_client, keys) == []
