from __future__ import annotations

import pytest

from app.config import ConfigError, Settings, SinkSettings
from tests.support.cli import run_filefleet

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/files"
BASE = {"SQS_QUEUE_URL": QUEUE, "INDEX_SINK": "local"}


def test_defaults_are_the_guides() -> None:
    settings = Settings.from_env(BASE)
    assert settings.queue.worker_concurrency == 2
    assert settings.queue.visibility_timeout == 300
    assert settings.queue.wait_time_seconds == 20
    assert settings.queue.drain_seconds == 90
    assert settings.log_level == "INFO"
    assert settings.queue.dead_letter_queue_url is None
    assert settings.queue.s3_bucket is None
    assert settings.queue.max_receive_count is None


def test_every_setting_is_read_from_its_variable() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "DEAD_LETTER_QUEUE_URL": QUEUE + "-dlq",
            "S3_BUCKET": "cis-filesearch-landing-dev",
            "WORKER_CONCURRENCY": "16",
            "VISIBILITY_TIMEOUT": "600",
            "WAIT_TIME_SECONDS": "5",
            "DRAIN_SECONDS": "100",
            "RETRY_BASE_SECONDS": "2",
            "RETRY_MAX_SECONDS": "60",
            "MAX_RECEIVE_COUNT": "7",
            "AWS_REGION": "ap-northeast-1",
            "LOG_LEVEL": "debug",
        }
    )
    assert (settings.queue.dead_letter_queue_url, settings.queue.s3_bucket) == (
        QUEUE + "-dlq",
        "cis-filesearch-landing-dev",
    )
    assert (
        settings.queue.worker_concurrency,
        settings.queue.visibility_timeout,
        settings.queue.wait_time_seconds,
    ) == (
        16,
        600,
        5,
    )
    assert (
        settings.queue.drain_seconds,
        settings.queue.retry_base_seconds,
        settings.queue.retry_max_seconds,
    ) == (100, 2, 60)
    assert (settings.queue.max_receive_count, settings.aws_region, settings.log_level) == (
        7,
        "ap-northeast-1",
        "DEBUG",
    )


@pytest.mark.parametrize(
    ("env", "region"),
    [
        ({"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "us-east-1"}, "us-west-2"),
        ({"AWS_DEFAULT_REGION": "us-east-1"}, "us-east-1"),
        ({}, "eu-west-1"),  # from the queue URL
    ],
)
def test_region_follows_boto3_then_the_queue_url(env: dict[str, str], region: str) -> None:
    assert Settings.from_env({**BASE, **env}).aws_region == region


def test_region_of_a_legacy_queue_url_and_the_guides_default() -> None:
    legacy = "https://ap-southeast-2.queue.amazonaws.com/123456789012/files"
    assert Settings.from_env({**BASE, "SQS_QUEUE_URL": legacy}).aws_region == "ap-southeast-2"
    local = "http://localhost:4566/000000000000/files"
    assert Settings.from_env({**BASE, "SQS_QUEUE_URL": local}).aws_region == "ap-northeast-1"


@pytest.mark.parametrize(
    ("env", "named", "says"),
    [
        ({}, "SQS_QUEUE_URL", "is required"),
        ({"SQS_QUEUE_URL": "files"}, "SQS_QUEUE_URL", "not a queue URL"),
        ({"DEAD_LETTER_QUEUE_URL": "ftp://x/y"}, "DEAD_LETTER_QUEUE_URL", "not a queue URL"),
        ({"S3_BUCKET": "Not_A_Bucket"}, "S3_BUCKET", "not a valid S3 bucket name"),
        ({"WORKER_CONCURRENCY": "two"}, "WORKER_CONCURRENCY", "not a whole number"),
        ({"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY", "between 1 and 256"),
        ({"VISIBILITY_TIMEOUT": "43201"}, "VISIBILITY_TIMEOUT", "between 1 and 43200"),
        ({"WAIT_TIME_SECONDS": "21"}, "WAIT_TIME_SECONDS", "between 0 and 20"),
        ({"DRAIN_SECONDS": "-1"}, "DRAIN_SECONDS", "between 1 and 3600"),
        (
            {"RETRY_BASE_SECONDS": "60", "RETRY_MAX_SECONDS": "30"},
            "RETRY_MAX_SECONDS",
            "below RETRY_BASE_SECONDS",
        ),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL", "not one of"),
    ],
)
def test_an_invalid_setting_names_the_variable_and_the_problem(
    env: dict[str, str], named: str, says: str
) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({**BASE, **env} if named != "SQS_QUEUE_URL" else env)
    message = str(error.value)
    assert message.startswith(named) and says in message
    assert "\n" not in message


def test_blank_values_mean_unset() -> None:
    settings = Settings.from_env({**BASE, "WORKER_CONCURRENCY": " ", "S3_BUCKET": ""})
    assert settings.queue.worker_concurrency == 2 and settings.queue.s3_bucket is None


def test_the_cli_exits_2_with_one_line_naming_the_variable() -> None:
    env = {"PATH": "/usr/bin:/bin", "WORKER_CONCURRENCY": "lots"}
    result = run_filefleet("worker", env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "SQS_QUEUE_URL" in result.stderr


def test_pipeline_embedder_and_sink_defaults() -> None:
    settings = Settings.from_env({"SQS_QUEUE_URL": QUEUE, "OPENSEARCH_URL": "http://127.0.0.1:9200"})
    assert settings.pipeline.max_file_bytes == 512 * 1024 * 1024
    assert settings.pipeline.index_gps is False
    assert settings.pipeline.worker_id
    assert (settings.embedder.kind, settings.embedder.model_id) == ("titan", "amazon.titan-embed-image-v1")
    assert settings.embedder.dimension == 1024
    assert (settings.sink.kind, settings.sink.index, settings.sink.auth) == ("opensearch", "files", "none")


def test_amazon_opensearch_defaults_to_sigv4_and_accepts_the_guides_bare_endpoint() -> None:
    domain = SinkSettings.from_env(
        {"OPENSEARCH_ENDPOINT": "search-cis-dev-abc.ap-northeast-1.es.amazonaws.com"}
    )
    assert domain.opensearch_url == "https://search-cis-dev-abc.ap-northeast-1.es.amazonaws.com"
    assert (domain.auth, domain.sigv4_service) == ("sigv4", "es")
    serverless = SinkSettings.from_env({"OPENSEARCH_URL": "https://abc123.us-east-1.aoss.amazonaws.com"})
    assert (serverless.auth, serverless.sigv4_service) == ("sigv4", "aoss")


def test_the_password_never_appears_in_the_settings_repr() -> None:
    env = {"OPENSEARCH_URL": "https://localhost:9200", "OPENSEARCH_AUTH": "basic"}
    sink = SinkSettings.from_env(
        {**env, "OPENSEARCH_USERNAME": "admin", "OPENSEARCH_PASSWORD": "s3cr3t-Pass"}
    )
    assert "s3cr3t-Pass" not in repr(sink)


@pytest.mark.parametrize(
    ("env", "named", "says"),
    [
        ({"INDEX_SINK": "opensearch"}, "OPENSEARCH_URL", "is required when INDEX_SINK=opensearch"),
        ({"INDEX_SINK": "elastic"}, "INDEX_SINK", "not one of"),
        ({"EMBEDDER": "openai"}, "EMBEDDER", "not one of titan, local, none"),
        ({"EMBEDDING_DIMENSION": "512"}, "EMBEDDING_DIMENSION", "not one of 256, 384, 1024"),
        ({"INDEX_GPS": "maybe"}, "INDEX_GPS", "not a boolean"),
        ({"MAX_FILE_BYTES": "0"}, "MAX_FILE_BYTES", "between 1 and"),
        ({"OPENSEARCH_INDEX": "My Files"}, "OPENSEARCH_INDEX", "not a valid index name"),
        (
            {"OPENSEARCH_URL": "http://127.0.0.1:9200", "OPENSEARCH_AUTH": "basic"},
            "OPENSEARCH_USERNAME",
            "required when OPENSEARCH_AUTH=basic",
        ),
    ],
)
def test_invalid_pipeline_embedder_and_sink_settings(env: dict[str, str], named: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({**BASE, **env})
    assert str(error.value).startswith(named) and says in str(error.value)
