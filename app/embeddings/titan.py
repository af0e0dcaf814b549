"""Amazon Titan Multimodal Embeddings G1 through Bedrock Runtime InvokeModel.

Request and response, per
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-mm.html:
``{"inputText"?, "inputImage"? (base64 string), "embeddingConfig": {"outputEmbeddingLength": 256|384|1024}}``
→ ``{"embedding": [...], "inputTextTokenCount": int, "message": str}``. Both inputs give the average of the
two vectors. Image bytes go as base64 text (the operations guide sent them as latin1 text, which the model
cannot read).

Three layers of protection against overload, from the inside out: botocore's *adaptive* retry mode (backoff
with jitter plus a client-side token bucket that slows every thread sharing the client after a throttle), a
semaphore that bounds the calls in flight per worker, and finally the message's own retry (TransientError).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app import metrics
from app.errors import FileError, PermanentError, TransientError, classify_aws_error

log = logging.getLogger(__name__)

# The model page (https://docs.aws.amazon.com/bedrock/latest/userguide/titan-multiemb-models.html) says
# "Max input text tokens - 256", "Max input image size - 25 MB", "Max input image resolution - 2048 x 2048
# pixels". Earlier versions of that page said 128 tokens and 5 MB, and an aws-samples README still says 128:
# hence a budget with a wide margin, and one retry with half the text if the service still says "too long".
MAX_TEXT_TOKENS = 256
# Bedrock's tokenizer is not public, so tokens are estimated pessimistically (see estimate_tokens), two are
# kept for the tokenizer's start/end markers, and 15 % more is left as a margin for the estimate's errors.
TEXT_TOKEN_BUDGET = int((MAX_TEXT_TOKENS - 2) * 0.85)  # 215 estimated tokens
# InvokeModel's ``body`` is modelled with max 25,000,000 bytes (botocore's bedrock-runtime service-2.json);
# botocore validates only minimums, so an oversized body would travel (~33 MB for a 25 MB image in base64)
# only to be refused. A 2048 px JPEG is far below this; the check catches a caller that skipped resizing.
MAX_BODY_BYTES = 25_000_000

# Bedrock error codes that a later attempt may get past. ModelTimeoutException (408) and ModelErrorException
# (424, "an error while processing the model") are not the input's fault as far as anyone can tell, and
# ServiceQuotaExceededException is documented with "You can resubmit your request later"; the queue's
# receive-count limit still dead-letters a file that keeps failing this way.
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "ModelErrorException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ServiceQuotaExceededException",
    }
)
# How the Titan family words "text too long" (e.g. "Too many input tokens. Max input tokens: 8192, request
# input token count: 9875" from the text model); deliberately not "length", which outputEmbeddingLength has.
_TEXT_TOO_LONG = re.compile(r"\btokens?\b|too long|too many", re.IGNORECASE)

# A letter run, a single digit, or any other single visible character.
_TOKEN_PIECE = re.compile(r"[A-Za-z]+|[0-9]|\S")


class InvokeModelClient(Protocol):
    """The one call this module makes on a boto3 ``bedrock-runtime`` client."""

    def invoke_model(self, **kwargs: Any) -> Any: ...


def bedrock_client_config(
    *,
    max_concurrency: int,
    max_attempts: int = 5,
    connect_timeout: float = 5.0,
    read_timeout: float = 60.0,
) -> Config:
    """The botocore Config for the Bedrock Runtime client: adaptive retries, a pool for every slot.

    ``adaptive`` is standard mode (exponential backoff with jitter, 1 s base for throttles, capped at 20 s,
    retry quota) plus a client-side token bucket: after a ThrottlingException every thread sharing the client
    sends more slowly, instead of each hammering the endpoint on its own schedule. ``max_attempts`` counts the
    first try (botocore's ``total_max_attempts``; its ``max_attempts`` key would count retries only); 5 bounds
    one file's time in backoff to about 15 s before the message's own retry takes over.
    """
    return Config(
        retries={"mode": "adaptive", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_concurrency + 2,  # the semaphore's slots, plus slack for the retry path
        tcp_keepalive=True,
    )


def estimate_tokens(text: str) -> int:
    """A deliberately high token count for ``text``, without the model's tokenizer.

    Subword tokenizers give common English words one token and long or rare words a few; digits are often
    split one per token; punctuation is usually one token; a non-ASCII character can take two or more bytes
    of byte-level BPE. So: one token per started 4 letters of an ASCII letter run, one per digit, one per
    ASCII symbol, two per non-ASCII character. English prose comes out at 1.5 to 1.9 per word (technical
    text at the top), against the ~1.3 per word a subword tokenizer typically gives.
    """
    return sum(_piece_cost(match.group()) for match in _TOKEN_PIECE.finditer(text))


def truncate_text(text: str, budget: int = TEXT_TOKEN_BUDGET) -> str:
    """The longest prefix of ``text`` whose estimated tokens fit ``budget``, cut between words (pieces)."""
    text = text.strip()
    spent = 0
    for match in _TOKEN_PIECE.finditer(text):
        spent += _piece_cost(match.group())
        if spent > budget:
            return text[: match.start()].rstrip()
    return text


def _piece_cost(piece: str) -> int:
    if piece.isascii():
        return math.ceil(len(piece) / 4) if piece.isalpha() else 1
    return 2


def _half(text: str) -> str:
    """The first half of ``text``, ending at a word boundary when there is one."""
    head = text[: len(text) // 2]
    cut = head.rfind(" ")
    return (head[:cut] if cut > 0 else head).rstrip()


class TitanEmbedder:
    """The Embedder for ``amazon.titan-embed-image-v1`` (or another model with the same body)."""

    def __init__(
        self,
        client: InvokeModelClient,
        *,
        model_id: str,
        dimension: int,
        max_concurrency: int,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
        self.model_id = model_id
        self.dimension = dimension
        self._client = client
        # A thread waiting here is a file waiting for a Bedrock slot; botocore's own retries (and their
        # sleeps) happen inside the slot, so a throttled worker also sends fewer new requests.
        self._slots = threading.BoundedSemaphore(max_concurrency)
        meta = getattr(client, "meta", None)
        self._region = str(getattr(meta, "region_name", None) or "this region")
        if meta is not None:  # count every throttled attempt, also those botocore's retries absorb
            meta.events.register("needs-retry.bedrock-runtime.InvokeModel", self._count_throttle)

    def embed(self, *, image: bytes | None = None, text: str | None = None) -> list[float]:
        """One vector of ``dimension`` floats; see the Embedder protocol for the contract."""
        text = truncate_text(text) if text else ""
        if image is None and not text:
            raise PermanentError(
                "nothing to embed: no image and no text (after trimming whitespace)", error_class="EmptyInput"
            )
        encoded_image = base64.b64encode(image).decode("ascii") if image is not None else None
        try:
            return self._invoke(encoded_image, text)
        except ClientError as exc:
            shorter = _half(text)
            if not (shorter and self._says_text_too_long(exc)):
                raise self._classify(exc) from None
        # Our estimate was not pessimistic enough for this text (or the limit is lower than documented).
        log.warning(
            "titan.text_too_long_retrying_with_half",
            extra={"model_id": self.model_id, "chars": len(text), "retry_chars": len(shorter)},
        )
        try:
            return self._invoke(encoded_image, shorter)
        except ClientError as exc:
            raise self._classify(exc, note=" (even after halving the text)") from None

    def _invoke(self, encoded_image: str | None, text: str) -> list[float]:
        """One InvokeModel call in a concurrency slot; ClientError is left to the caller to classify."""
        request: dict[str, Any] = {"embeddingConfig": {"outputEmbeddingLength": self.dimension}}
        if text:
            request["inputText"] = text
        if encoded_image is not None:
            request["inputImage"] = encoded_image
        body = json.dumps(request).encode()
        if len(body) > MAX_BODY_BYTES:
            raise PermanentError(
                f"image too large for Bedrock: the request body would be {len(body):,} bytes, over "
                f"InvokeModel's {MAX_BODY_BYTES:,}; resize it (at most 2048 x 2048 px) before embedding",
                error_class="ImageTooLarge",
            )
        try:
            with self._slots:
                response = self._client.invoke_model(
                    modelId=self.model_id,
                    body=body,
                    contentType="application/json",
                    accept="application/json",
                )
                payload = response["body"].read()
        except BotoCoreError as exc:  # connection refused, timeouts, a body cut short: all transient
            raise classify_aws_error(exc, action=f"invoking Bedrock model {self.model_id}") from None
        return self._vector_from(payload)

    def _vector_from(self, payload: bytes) -> list[float]:
        """The embedding in a 200 response, checked before it reaches a ``knn_vector`` field.

        A body that is not JSON or has no list of finite numbers is TransientError: the service accepted the
        input, so the input is not shown to be at fault, and a garbled answer is what a retry can fix (the
        receive-count limit bounds it if it is systematic). A clean list of the wrong length is
        PermanentError: the model ignores or does not offer ``outputEmbeddingLength`` (e.g. BEDROCK_MODEL_ID
        names a text-only model), which every retry would repeat; the dead-letter reason says what to fix.
        """
        try:
            document = json.loads(payload)
        except ValueError:
            raise TransientError(
                f"Bedrock {self.model_id} answered 200 with a body that is not JSON ({payload[:100]!r})",
                error_class="InvalidEmbeddingResponse",
            ) from None
        embedding = document.get("embedding") if isinstance(document, dict) else None
        if not isinstance(embedding, list) or not all(
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            for value in embedding
        ):
            message = document.get("message") if isinstance(document, dict) else None
            raise TransientError(
                f"Bedrock {self.model_id} answered 200 without a list of finite numbers under 'embedding'"
                + (f" (message: {message})" if message else ""),
                error_class="InvalidEmbeddingResponse",
            )
        if len(embedding) != self.dimension:
            raise PermanentError(
                f"Bedrock {self.model_id} returned {len(embedding)} numbers, not EMBEDDING_DIMENSION="
                f"{self.dimension}: check that BEDROCK_MODEL_ID names a model that honours "
                "embeddingConfig.outputEmbeddingLength (amazon.titan-embed-image-v1 does)",
                error_class="EmbeddingDimensionMismatch",
            )
        return [float(value) for value in embedding]

    def _count_throttle(self, response: Any = None, **_: Any) -> None:
        """botocore's per-attempt hook; returning None leaves the retry decision to botocore."""
        parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
        if isinstance(parsed, dict) and parsed.get("Error", {}).get("Code") == "ThrottlingException":
            metrics.EMBEDDING_THROTTLES.labels(self.model_id).inc()

    @staticmethod
    def _says_text_too_long(exc: ClientError) -> bool:
        error = exc.response.get("Error", {})
        return error.get("Code") == "ValidationException" and bool(
            _TEXT_TOO_LONG.search(str(error.get("Message", "")))
        )

    def _classify(self, exc: ClientError, *, note: str = "") -> FileError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")) or code
        model, region = self.model_id, self._region
        if code == "AccessDeniedException":
            return PermanentError(
                f"Bedrock model access not granted for {model} in {region} ({message}): enable the model "
                "under 'Model access' in the Bedrock console for this region, and allow bedrock:InvokeModel "
                "on it in the worker's IAM role; then redrive",
                error_class=code,
            )
        if code == "ResourceNotFoundException":
            return PermanentError(
                f"Bedrock model {model} not found in {region} ({message}): check BEDROCK_MODEL_ID and that "
                "the model is offered in this region; then redrive",
                error_class=code,
            )
        if code == "ValidationException":
            return PermanentError(f"Bedrock {model} rejected the input{note}: {message}", error_class=code)
        if code in _TRANSIENT_CODES:
            return TransientError(
                f"Bedrock {model} in {region}: {code} after the client's own retries: {message}",
                error_class=code,
            )
        return classify_aws_error(exc, action=f"invoking Bedrock model {model} in {region}")
