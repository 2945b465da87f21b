"""Configuration: convenient in development, strict when deployed, secrets kept secret."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from keel.config import (
    DEVELOPMENT_SECRET_KEY,
    Environment,
    HttpSettings,
    RateLimitSettings,
    Settings,
    configuration_problems,
    load_settings,
)
from keel.main import ConfigurationError, create_app

STRONG_KEY = "k" * 48


def deployed(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": Environment.PRODUCTION,
        "secret_key": SecretStr(STRONG_KEY),
        "http": HttpSettings(expose_docs=False, expose_metrics=True),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # no developer .env leaks in
    for name in ("KEEL_ENV", "KEEL_SECRET_KEY", "KEEL_DEBUG", "KEEL_CORS_ORIGINS", "KEEL_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_development_defaults_start() -> None:
    settings = load_settings()
    assert settings.env is Environment.DEVELOPMENT
    assert configuration_problems(settings) == []
    assert settings.signing_key.get_secret_value() == DEVELOPMENT_SECRET_KEY
    assert settings.database.database_url.get_secret_value() == "sqlite:///./keel.db"
    assert settings.docs_exposed
    assert settings.metrics_exposed


def test_a_complete_production_configuration_is_accepted() -> None:
    assert configuration_problems(deployed()) == []


@pytest.mark.readiness("config.refuse_unsafe")
@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"secret_key": None}, "KEEL_SECRET_KEY is not set"),
        ({"secret_key": SecretStr("short-key")}, "shorter than 32 bytes"),
        ({"secret_key": SecretStr(DEVELOPMENT_SECRET_KEY)}, "known default"),
        ({"secret_key": SecretStr("changeme")}, "known default"),
        ({"debug": True}, "KEEL_DEBUG"),
        ({"http": HttpSettings(cors_origins=["*"], expose_docs=False, expose_metrics=False)}, "not '*'"),
        ({"http": HttpSettings(expose_metrics=False)}, "KEEL_EXPOSE_DOCS"),
        ({"http": HttpSettings(expose_docs=False)}, "KEEL_EXPOSE_METRICS"),
        ({"rate_limit": RateLimitSettings(rate_limits="off")}, "KEEL_RATE_LIMITS=off"),
    ],
)
@pytest.mark.parametrize("env", [Environment.STAGING, Environment.PRODUCTION])
def test_deployed_environments_refuse_unsafe_settings(
    overrides: dict[str, object], problem: str, env: Environment
) -> None:
    settings = deployed(env=env, **overrides)
    problems = configuration_problems(settings)
    assert any(problem in found for found in problems), problems
    with pytest.raises(ConfigurationError, match="refusing to start"):
        create_app(settings)


def test_every_problem_is_reported_at_once() -> None:
    settings = Settings(env=Environment.PRODUCTION, debug=True)
    assert len(configuration_problems(settings)) == 4  # key, debug, docs, metrics


@pytest.mark.readiness("config.secrets_hidden")
def test_secrets_never_appear_in_reprs() -> None:
    settings = deployed(secret_key=SecretStr("super-secret-value-" + "z" * 20))
    settings.database.database_url = SecretStr("postgresql+asyncpg://keel:db-password@db/keel")
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "super-secret-value" not in text
        assert "db-password" not in text


def test_environment_variables_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_ENV", "staging")
    monkeypatch.setenv("KEEL_CORS_ORIGINS", "https://a.example.com, https://b.example.com")
    monkeypatch.setenv("KEEL_DB_POOL_SIZE", "7")
    monkeypatch.setenv("KEEL_LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.env is Environment.STAGING
    assert settings.http.cors_origins == ["https://a.example.com", "https://b.example.com"]
    assert settings.database.db_pool_size == 7
    assert settings.observability.log_level == "DEBUG"
    assert settings.json_logs


def test_dotenv_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text("KEEL_PORT=9123\nKEEL_REDIS_URL=redis://127.0.0.1:6379/3\n")
    settings = load_settings()
    assert settings.http.port == 9123
    assert settings.redis.redis_url is not None
