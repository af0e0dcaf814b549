"""TitanEmbedder through a real boto3 client, over HTTP, against the strict InvokeModel stub on 127.0.0.1."""

from __future__ import annotations

import base64
import functools
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from prometheus_client import REGISTRY

from app.config import EmbedderSettings
from app.embeddings.factory import build_embedder
from app.embeddings.local import LocalEmbedder
from app.embeddings.titan import (
    MAX_TEXT_TOKENS,
    TitanEmbedder,
    bedrock_client_config,
    estimate_tokens,
    truncate_text,
)
from app.errors import PermanentError, TransientError
from tests.support.components import free_port
from tests.support.titan_stub import TITAN_MULTIMODAL, TitanStub, crude_token_count, titan_stub

pytestmark = pytest.mark.integration

PROSE = (
    "Amazon Titan Multimodal Embeddings translates text, images, or a combination of both into vectors "
    "in a shared semantic space, for search and recommendation: searching images by text or by image. "
)


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[TitanStub]:
    """The stub, with boto3 pointed at it through boto3's own per-service variable."""
    with titan_stub() as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", running.url)
        yield running


@functools.cache
def _session() -> boto3.session.Session:
    """One session for the module: it caches the parsed service model, which takes ~0.3 s to load here.

    Made on first use, inside a test, so it sees the fake credentials and region of conftest; endpoints are
    still read from the environment by each new client.
    """
    return boto3.session.Session()


def bedrock_client(*, max_concurrency: int = 4, max_attempts: int = 3) -> Any:
    """A fresh client per test: the adaptive rate limiter's memory of throttles must not leak across tests."""
    config = bedrock_client_config(max_concurrency=max_concurrency, max_attempts=max_attempts)
    return _session().client("bedrock-runtime", config=config)


def titan(
    *,
    dimension: int = 1024,
    max_concurrency: int = 4,
    max_attempts: int = 3,
    model_id: str = TITAN_MULTIMODAL,
) -> TitanEmbedder:
    client = bedrock_client(max_concurrency=max_concurrency, max_attempts=max_attempts)
    return TitanEmbedder(client, model_id=model_id, dimension=dimension, max_concurrency=max_concurrency)


def picture(fmt: str, size: tuple[int, int] = (640, 480)) -> bytes:
    blobs = np.random.default_rng(5).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(blobs).resize(size, Image.Resampling.BICUBIC).save(buffer, fmt)
    return buffer.getvalue()


def sent_body(stub: TitanStub, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(stub.requests[index].body)
    return body


# -- wiring ---------------------------------------------------------------------------------------------


def test_boto3_takes_the_bedrock_runtime_endpoint_from_its_own_variable(stub: TitanStub) -> None:
    assert bedrock_client().meta.endpoint_url == stub.url


def test_client_config_asks_for_adaptive_retries_and_a_pool_for_every_slot() -> None:
    config = bedrock_client_config(max_concurrency=6, max_attempts=4)
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 4}
    assert config.max_pool_connections is not None and config.max_pool_connections >= 6


# -- what goes over the wire ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_image_goes_as_base64_of_the_exact_bytes(stub: TitanStub, fmt: str) -> None:
    image = picture(fmt)
    vector = titan().embed(image=image)

    (request,) = stub.requests
    body = sent_body(stub)
    assert base64.b64decode(body["inputImage"], validate=True) == image
    assert (request.status, request.image_format, request.image_size) == (200, fmt, (640, 480))
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert set(body) == {"inputImage", "embeddingConfig"}, "no inputText key when there is no text"
    assert len(vector) == 1024 and np.linalg.norm(vector) == pytest.approx(1.0)


@pytest.mark.parametrize("dimension", [256, 384, 1024])
def test_each_dimension_is_requested_and_returned(stub: TitanStub, dimension: int) -> None:
    vector = titan(dimension=dimension).embed(text="a red bicycle")
    assert sent_body(stub)["embeddingConfig"] == {"outputEmbeddingLength": dimension}
    assert len(vector) == dimension


def test_text_and_image_go_together_in_one_request(stub: TitanStub) -> None:
    embedder = titan(dimension=256)
    image = picture("JPEG")
    both = embedder.embed(image=image, text="a sunset over the sea")
    (request,) = stub.requests
    assert (request.text, request.image_format) == ("a sunset over the sea", "JPEG")
    # the stub averages like Titan does; the embedder passes that vector through untouched
    text_only, image_only = embedder.embed(text="a sunset over the sea"), embedder.embed(image=image)
    expected = np.add(text_only, image_only)
    assert both == pytest.approx(list(expected / np.linalg.norm(expected)))


def test_long_text_is_truncated_to_fit_the_token_limit(stub: TitanStub) -> None:
    long_text = PROSE * 60  # about 2,000 words
    vector = titan().embed(text=long_text)

    (request,) = stub.requests  # one call: no ValidationException, no retry
    assert request.status == 200 and request.text is not None
    assert long_text.startswith(request.text)
    assert crude_token_count(request.text) <= MAX_TEXT_TOKENS
    assert len(request.text.split()) >= 80, "the margin is conservative, not absurd"
    assert len(vector) == 1024


def test_text_the_service_still_finds_too_long_is_retried_once_with_half(stub: TitanStub) -> None:
    stub.max_text_tokens = 128  # what earlier versions of the model page said
    text = " ".join(["word"] * 400)  # four letters: the embedder and the stub count one token each
    titan().embed(text=text)

    first, second = stub.requests
    assert (first.status, first.error_code) == (400, "ValidationException")
    assert "Too many input tokens" in (first.error_message or "")
    assert second.status == 200 and second.text is not None
    sent_first = sent_body(stub, 0)["inputText"]
    assert sent_first.startswith(second.text) and len(second.text) <= len(sent_first) // 2


def test_text_too_long_even_after_halving_is_permanent(stub: TitanStub) -> None:
    stub.max_text_tokens = 40
    with pytest.raises(PermanentError, match="even after halving the text") as caught:
        titan().embed(text=" ".join(["word"] * 400))
    assert caught.value.error_class == "ValidationException"
    assert len(stub.requests) == 2, "one retry with half the text, no more"


def test_image_with_text_too_long_keeps_the_image_when_halving(stub: TitanStub) -> None:
    stub.max_text_tokens = 128
    titan().embed(image=picture("PNG"), text=" ".join(["word"] * 400))
    assert [request.status for request in stub.requests] == [400, 200]
    assert stub.requests[1].image_format == "PNG"


def test_nothing_to_embed_is_permanent_and_sends_nothing(stub: TitanStub) -> None:
    with pytest.raises(PermanentError, match="nothing to embed"):
        titan().embed(text="   ")
    assert stub.requests == []


def test_an_image_too_big_for_the_request_body_is_refused_before_sending(stub: TitanStub) -> None:
    huge = b"\xff\xd8" + bytes(19_000_000)  # base64 makes it ~25.3 MB, over InvokeModel's body limit
    with pytest.raises(PermanentError, match="resize") as caught:
        titan().embed(image=huge)
    assert caught.value.error_class == "ImageTooLarge"
    assert stub.requests == []


# -- errors ---------------------------------------------------------------------------------------------


def test_throttling_is_retried_by_the_client_and_then_succeeds(stub: TitanStub) -> None:
    labels = {"model": TITAN_MULTIMODAL}
    throttles = REGISTRY.get_sample_value("filefleet_embedding_throttles_total", labels) or 0
    stub.throttle_next(2)
    vector = titan(max_attempts=3).embed(text="hello")
    assert [request.status for request in stub.requests] == [429, 429, 200]
    assert len(vector) == 1024
    after = REGISTRY.get_sample_value("filefleet_embedding_throttles_total", labels)
    assert after == throttles + 2, "every throttled attempt is counted, also those the client retried"


def test_persistent_throttling_becomes_a_transient_error(stub: TitanStub) -> None:
    stub.throttle_next(10)
    with pytest.raises(TransientError, match="ThrottlingException") as caught:
        titan(max_attempts=2).embed(text="hello")
    assert caught.value.error_class == "ThrottlingException"
    assert len(stub.requests) == 2, "max_attempts counts the first try"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (408, "ModelTimeoutException"),
        (429, "ModelNotReadyException"),
        (424, "ModelErrorException"),
        (500, "InternalServerException"),
        (503, "ServiceUnavailableException"),
        (400, "ServiceQuotaExceededException"),
    ],
)
def test_service_side_failures_are_transient(stub: TitanStub, status: int, code: str) -> None:
    stub.fail_next(1, status, code, f"injected {code}")
    with pytest.raises(TransientError, match=code) as caught:
        titan(max_attempts=1).embed(text="hello")
    assert caught.value.error_class == code


def test_an_unreachable_endpoint_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", f"http://127.0.0.1:{free_port()}")  # nobody there
    with pytest.raises(TransientError, match="invoking Bedrock model") as caught:
        titan(max_attempts=1).embed(text="hello")
    assert caught.value.error_class == "EndpointConnectionError"


def test_a_rejected_input_is_permanent_with_the_services_reason(stub: TitanStub) -> None:
    with pytest.raises(PermanentError) as caught:
        titan().embed(image=b"GIF89a not what Titan takes")
    assert caught.value.error_class == "ValidationException"
    assert "rejected the input" in caught.value.reason and "PNG or JPEG" in caught.value.reason
    assert len(stub.requests) == 1, "a validation error is not retried"


def test_an_unknown_model_is_permanent_and_named(stub: TitanStub) -> None:
    with pytest.raises(PermanentError) as caught:
        titan(model_id="amazon.titan-embed-image-v9").embed(text="hello")
    assert caught.value.error_class == "ResourceNotFoundException"
    assert "amazon.titan-embed-image-v9" in caught.value.reason and "BEDROCK_MODEL_ID" in caught.value.reason


def test_model_access_not_granted_is_permanent_and_says_what_to_do(stub: TitanStub) -> None:
    stub.denied_models.add(TITAN_MULTIMODAL)
    with pytest.raises(PermanentError) as caught:
        titan().embed(text="hello")
    reason = caught.value.reason
    assert caught.value.error_class == "AccessDeniedException"
    assert f"model access not granted for {TITAN_MULTIMODAL} in us-east-1" in reason
    assert "Bedrock console" in reason


def test_a_garbled_200_is_transient(stub: TitanStub) -> None:
    embedder = titan(dimension=256)
    stub.respond_next_raw(b"{}")  # what moto answers
    with pytest.raises(TransientError, match="without a list of finite numbers"):
        embedder.embed(text="hello")
    stub.respond_next_raw(b"<html>gateway</html>")
    with pytest.raises(TransientError, match="not JSON"):
        embedder.embed(text="hello")
    stub.respond_next_raw(json.dumps({"embedding": [0.1, "x"], "message": "oops"}).encode())
    with pytest.raises(TransientError, match="oops"):
        embedder.embed(text="hello")


def test_a_vector_of_the_wrong_length_is_permanent_and_names_the_settings(stub: TitanStub) -> None:
    stub.respond_next_raw(json.dumps({"embedding": [0.5] * 1536, "inputTextTokenCount": 1}).encode())
    with pytest.raises(PermanentError, match="1536 numbers, not EMBEDDING_DIMENSION=1024") as caught:
        titan().embed(text="hello")
    assert caught.value.error_class == "EmbeddingDimensionMismatch"
    assert "BEDROCK_MODEL_ID" in caught.value.reason


# -- concurrency ----------------------------------------------------------------------------------------


def _embed_from_threads(embedder: TitanEmbedder, count: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def call(n: int) -> None:
        start.wait()
        try:
            embedder.embed(text=f"request number {n}")
        except Exception as exc:  # noqa: BLE001 - every failure is collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


def test_never_more_calls_in_flight_than_max_concurrency(stub: TitanStub) -> None:
    stub.hold_seconds = 0.2
    assert _embed_from_threads(titan(max_concurrency=2), 8) == []
    assert len(stub.successful()) == 8
    assert stub.max_in_flight == 2


def test_the_in_flight_measure_does_see_more_when_the_bound_allows_it(stub: TitanStub) -> None:
    stub.hold_seconds = 0.3
    assert _embed_from_threads(titan(max_concurrency=8), 8) == []
    assert stub.max_in_flight > 2, "without this, the test above could not fail"


# -- the stub refuses what Bedrock refuses (the tests above are only as good as this) ----------------------


def _raw_invoke(body: bytes | str, model_id: str = TITAN_MULTIMODAL) -> dict[str, Any]:
    client = bedrock_client(max_attempts=1)
    try:
        client.invoke_model(
            modelId=model_id, body=body, contentType="application/json", accept="application/json"
        )
    except ClientError as exc:
        return dict(exc.response["Error"])
    return {"Code": "none"}


def _image_b64(fmt: str, size: tuple[int, int] = (64, 64)) -> str:
    return base64.b64encode(picture(fmt, size)).decode()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("not json", "Malformed input request"),
        (json.dumps({"embeddingConfig": {"outputEmbeddingLength": 256}}), "at least one of"),
        (json.dumps({"inputText": "hi", "extra": 1}), "extraneous key [extra]"),
        (json.dumps({"inputText": "hi", "embeddingConfig": {"outputEmbeddingLength": 512}}), "512"),
        (json.dumps({"inputText": ""}), "minLength"),
        (json.dumps({"inputText": PROSE * 20}), "Too many input tokens"),
        (json.dumps({"inputImage": "not base64!"}), "not valid base64"),
        (json.dumps({"inputImage": picture("JPEG").decode("latin1")}), "not valid base64"),  # the guide's bug
        (json.dumps({"inputImage": _image_b64("GIF")}), "PNG or JPEG"),
        (json.dumps({"inputImage": _image_b64("JPEG", (2049, 16))}), "2049x16 exceeds"),
        (json.dumps({"inputImage": _image_b64("PNG")[:-40]}), "PNG or JPEG"),  # truncated file
    ],
)
def test_stub_answers_validation_exception_like_bedrock(stub: TitanStub, body: str, fragment: str) -> None:
    error = _raw_invoke(body)
    assert error["Code"] == "ValidationException"
    assert fragment in error["Message"]


def test_stub_accepts_the_largest_image_bedrock_accepts(stub: TitanStub) -> None:
    assert _raw_invoke(json.dumps({"inputImage": _image_b64("JPEG", (2048, 2048))})) == {"Code": "none"}


def test_stub_answers_resource_not_found_for_an_unknown_model(stub: TitanStub) -> None:
    assert (
        _raw_invoke(json.dumps({"inputText": "hi"}), "amazon.nope-v1")["Code"] == "ResourceNotFoundException"
    )


# -- truncation, as a property --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=3000))
def test_truncated_text_is_a_prefix_that_fits_both_estimates(text: str) -> None:
    truncated = truncate_text(text)
    assert text.strip().startswith(truncated)
    assert estimate_tokens(truncated) <= (MAX_TEXT_TOKENS - 2) * 0.85
    assert crude_token_count(truncated) <= estimate_tokens(truncated), (
        "the stub never out-counts the embedder"
    )


def test_short_text_is_left_alone() -> None:
    assert truncate_text("  a red bicycle  ") == "a red bicycle"


# -- the factory ----------------------------------------------------------------------------------------


def _settings(**env: str) -> EmbedderSettings:
    return EmbedderSettings.from_env(env)


def test_factory_none_means_no_embedder() -> None:
    assert build_embedder(_settings(EMBEDDER="none"), boto3.session.Session()) is None


def test_factory_local_builds_the_local_embedder_without_any_client() -> None:
    embedder = build_embedder(_settings(EMBEDDER="local", EMBEDDING_DIMENSION="384"), boto3.session.Session())
    assert isinstance(embedder, LocalEmbedder) and embedder.dimension == 384


def test_factory_titan_builds_an_adaptive_retry_client_that_reaches_the_endpoint(stub: TitanStub) -> None:
    settings = _settings(EMBEDDER="titan", EMBEDDING_DIMENSION="256", BEDROCK_MAX_CONCURRENCY="3")
    embedder = build_embedder(settings, boto3.session.Session(region_name="eu-west-1"))
    assert isinstance(embedder, TitanEmbedder)
    assert (embedder.model_id, embedder.dimension) == (TITAN_MULTIMODAL, 256)
    client = embedder._client
    assert client.meta.config.retries["mode"] == "adaptive"
    assert client.meta.region_name == "eu-west-1"
    stub.throttle_next(1)
    assert len(embedder.embed(text="hello")) == 256
    assert [request.status for request in stub.requests] == [429, 200], "the factory's client retries"
