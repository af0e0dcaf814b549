"""A strict local stand-in for Bedrock Runtime's InvokeModel with Titan Multimodal Embeddings G1.

No emulator implements Bedrock (moto answers ``{}``), so this one speaks the real wire format over real HTTP
on 127.0.0.1 and refuses what the service refuses, so that boto3 raises the same ClientError codes:

- route ``POST /model/{modelId}/invoke`` (restJson1; the model id is URL-encoded in the path), signed with
  SigV4 for the signing name ``bedrock``;
- errors as Bedrock sends them: the status of the modelled error, a header
  ``x-amzn-ErrorType: <Code>:http://internal.amazon.com/coral/com.amazon.bedrock/`` (botocore's RestJSONParser
  takes the code from this header, before the ``:``) and a JSON body ``{"message": ...}``;
- the body: JSON with only ``inputText``, ``inputImage``, ``embeddingConfig.outputEmbeddingLength``; at
  least one input; strict base64; a PNG or JPEG of at most 25 MB and 2048 x 2048 px (decoded with Pillow);
  text of at most ``max_text_tokens`` by a crude count (see ``crude_token_count``); a body of at most
  25,000,000 bytes;
- unknown model ids answer ResourceNotFoundException, ``denied_models`` AccessDeniedException.

Vectors are deterministic (seeded by a hash of model, length and inputs), unit length, and for text plus
image the normalised average of the two, as Titan documents. Every request is recorded (``requests``) with
what was decoded from it; ``throttle_next``/``fail_next`` inject errors; ``hold_seconds`` keeps each request
in flight a while and ``max_in_flight`` reports the most seen at once. The server runs at most
``max_handlers`` request threads: enough for any test, never an unbounded pile.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import re
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import numpy as np
from PIL import Image, UnidentifiedImageError

from tests.support.components import free_port

TITAN_MULTIMODAL = "amazon.titan-embed-image-v1"
MAX_BODY_BYTES = 25_000_000  # InvokeModel's modelled body limit
MAX_IMAGE_BYTES = 25 * 1000 * 1000  # "Max input image size - 25 MB"
MAX_IMAGE_SIDE = 2048  # "Max input image resolution - 2048 x 2048 pixels"
MAX_TEXT_TOKENS = 256  # "Max input text tokens - 256"
ALLOWED_LENGTHS = (256, 384, 1024)
_ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_ROUTE = re.compile(r"^/model/(?P<model>[^/]+)/invoke$")
_WORDS = re.compile(r"\w+")
_SYMBOLS = re.compile(r"[^\w\s]")
_MALFORMED = "Malformed input request: {}, please reformat your input and try again."


def crude_token_count(text: str) -> int:
    """A rough, slightly generous token count: one per started 5 characters of a word, one per symbol.

    The real tokenizer is not public. This count is never above the embedder's own pessimistic estimate
    (which charges one per started 4 ASCII letters, one per digit, two per non-ASCII character), so text the
    embedder truncated always passes, while text that was not truncated (a few thousand words) fails.
    """
    return sum(math.ceil(len(word) / 5) for word in _WORDS.findall(text)) + len(_SYMBOLS.findall(text))


@dataclass
class RecordedRequest:
    """One request as the stub saw it, and what it answered."""

    model_id: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    error_code: str | None = None
    error_message: str | None = None
    text: str | None = None
    image_format: str | None = None  # "PNG" or "JPEG" when inputImage decoded
    image_size: tuple[int, int] | None = None
    image_bytes: bytes | None = None
    output_length: int | None = None


@dataclass
class _Injected:
    status: int
    code: str
    message: str


class _StubError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _validation(message: str) -> _StubError:
    return _StubError(400, "ValidationException", message)


@dataclass
class TitanStub:
    """State and knobs of a running stub; obtain one from ``titan_stub()``."""

    url: str = ""
    models: set[str] = field(default_factory=lambda: {TITAN_MULTIMODAL})
    denied_models: set[str] = field(default_factory=set)
    max_text_tokens: int = MAX_TEXT_TOKENS
    hold_seconds: float = 0.0
    requests: list[RecordedRequest] = field(default_factory=list)
    max_in_flight: int = 0
    _in_flight: int = 0
    _injected: list[_Injected] = field(default_factory=list)
    _raw_responses: list[bytes] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def throttle_next(self, count: int) -> None:
        """The next ``count`` requests answer 429 ThrottlingException (with Bedrock's wording)."""
        self.fail_next(
            count, 429, "ThrottlingException", "Too many requests, please wait before trying again."
        )

    def fail_next(self, count: int, status: int, code: str, message: str) -> None:
        """The next ``count`` requests answer this error, whatever their body (after routing and auth)."""
        with self._lock:
            self._injected += [_Injected(status, code, message)] * count

    def respond_next_raw(self, body: bytes) -> None:
        """The next valid request answers 200 with exactly ``body`` (to test response validation)."""
        with self._lock:
            self._raw_responses.append(body)

    def successful(self) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.status == 200]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._injected.clear()
            self._raw_responses.clear()
            self.max_in_flight = 0

    # -- the service -------------------------------------------------------------------------------------

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        match = _ROUTE.match(path.split("?", 1)[0])
        if match is None:
            return self._error(None, 404, "UnknownOperationException", f"no operation at {path}")
        record = RecordedRequest(model_id=unquote(match["model"]), headers=headers, body=body)
        with self._lock:
            self.requests.append(record)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.hold_seconds:
                time.sleep(self.hold_seconds)
            return self._respond(record)
        except _StubError as exc:
            return self._error(record, exc.status, exc.code, exc.message)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _respond(self, record: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        self._check_auth(record.headers)
        if record.model_id in self.denied_models:
            raise _StubError(
                403,
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
            )
        if record.model_id not in self.models:
            raise _StubError(
                404,
                "ResourceNotFoundException",
                "Could not resolve the foundation model from the provided model identifier: "
                + record.model_id,
            )
        with self._lock:
            injected = self._injected.pop(0) if self._injected else None
        if injected is not None:
            raise _StubError(injected.status, injected.code, injected.message)
        vector, token_count = self._embed(record)
        with self._lock:
            raw = self._raw_responses.pop(0) if self._raw_responses else None
        payload = (
            raw
            if raw is not None
            else json.dumps(
                {"embedding": vector, "inputTextTokenCount": token_count, "message": None}
            ).encode()
        )
        record.status = 200
        headers = {
            "Content-Type": "application/json",
            "X-Amzn-Bedrock-Input-Token-Count": str(token_count),
            "X-Amzn-Bedrock-Invocation-Latency": "42",
        }
        return 200, headers, payload

    @staticmethod
    def _check_auth(headers: dict[str, str]) -> None:
        authorization = headers.get("authorization", "")
        if not authorization.startswith("AWS4-HMAC-SHA256 "):
            raise _StubError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        if "/bedrock/aws4_request" not in authorization:  # Bedrock Runtime's signing name is "bedrock"
            raise _StubError(
                403, "InvalidSignatureException", "Credential should be scoped to correct service: 'bedrock'."
            )
        content_type = headers.get("content-type", "").split(";")[0].strip()
        if content_type != "application/json":
            raise _validation(f"The provided content type {content_type!r} is not supported.")
        if headers.get("accept", "application/json") not in ("application/json", "*/*"):
            raise _validation(f"The provided Accept type {headers.get('accept')!r} is not supported.")

    def _embed(self, record: RecordedRequest) -> tuple[list[float], int]:
        if len(record.body) > MAX_BODY_BYTES:
            raise _validation(
                f"Request body of {len(record.body)} bytes exceeds the {MAX_BODY_BYTES} byte limit."
            )
        try:
            request = json.loads(record.body)
        except ValueError:
            raise _validation(_MALFORMED.format("#: expected a JSON object")) from None
        if not isinstance(request, dict):
            raise _validation(_MALFORMED.format("#: expected type: JSONObject"))
        extraneous = sorted(set(request) - {"inputText", "inputImage", "embeddingConfig"})
        if extraneous:
            raise _validation(_MALFORMED.format(f"#: extraneous key [{extraneous[0]}] is not permitted"))
        record.output_length = self._output_length(request.get("embeddingConfig"))
        text, image = request.get("inputText"), request.get("inputImage")
        if text is None and image is None:
            raise _validation(_MALFORMED.format("#: at least one of [inputText, inputImage] is required"))
        vectors, token_count = [], 0
        if text is not None:
            token_count = self._check_text(text, record)
            vectors.append(_unit_vector(record, b"text", text.encode()))
        if image is not None:
            vectors.append(_unit_vector(record, b"image", self._check_image(image, record)))
        mean = np.mean(vectors, axis=0)
        return [float(value) for value in mean / np.linalg.norm(mean)], token_count

    @staticmethod
    def _output_length(config: Any) -> int:
        if config is None:
            return 1024  # the documented default
        if not isinstance(config, dict) or set(config) - {"outputEmbeddingLength"}:
            raise _validation(_MALFORMED.format("#/embeddingConfig: only outputEmbeddingLength is permitted"))
        length = config.get("outputEmbeddingLength", 1024)
        if isinstance(length, bool) or not isinstance(length, int) or length not in ALLOWED_LENGTHS:
            raise _validation(
                _MALFORMED.format(
                    f"#/embeddingConfig/outputEmbeddingLength: {length} is not a valid enum value"
                )
            )
        return length

    def _check_text(self, text: Any, record: RecordedRequest) -> int:
        if not isinstance(text, str):
            raise _validation(_MALFORMED.format("#/inputText: expected type: String"))
        if not text:
            raise _validation(_MALFORMED.format("#/inputText: expected minLength: 1, actual: 0"))
        count = crude_token_count(text)
        if count > self.max_text_tokens:
            raise _validation(
                f"400 Bad Request: Too many input tokens. Max input tokens: {self.max_text_tokens}, "
                f"request input token count: {count}"
            )
        record.text = text
        return count

    @staticmethod
    def _check_image(encoded: Any, record: RecordedRequest) -> bytes:
        if not isinstance(encoded, str):
            raise _validation(_MALFORMED.format("#/inputImage: expected type: String"))
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _validation("Invalid image input: inputImage is not valid base64.") from None
        if len(data) > MAX_IMAGE_BYTES:
            raise _validation(f"Invalid image input: {len(data)} bytes exceeds the 25 MB limit.")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data), formats=["PNG", "JPEG"]) as image:
                    width, height = image.size
                    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
                        raise _validation(
                            f"Invalid image input: {width}x{height} exceeds the maximum resolution of "
                            f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels."
                        )
                    image.load()  # a truncated or corrupt file fails here
                    record.image_format = image.format
        except _StubError:
            raise
        except (
            UnidentifiedImageError,
            OSError,
            SyntaxError,
            ValueError,
            Warning,
            Image.DecompressionBombError,
        ):
            raise _validation("Invalid image input: the image must be a PNG or JPEG file.") from None
        record.image_size, record.image_bytes = (width, height), data
        return data

    def _error(
        self, record: RecordedRequest | None, status: int, code: str, message: str
    ) -> tuple[int, dict[str, str], bytes]:
        if record is not None:
            record.status, record.error_code, record.error_message = status, code, message
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code + _ERROR_TYPE_SUFFIX}
        return status, headers, json.dumps({"message": message}).encode()


def _unit_vector(record: RecordedRequest, kind: bytes, data: bytes) -> Any:
    length = record.output_length or 1024
    seed = hashlib.blake2b(record.model_id.encode() + b"|" + kind + b"|" + data, digest_size=8).digest()
    vector = np.random.default_rng(int.from_bytes(seed)).standard_normal(length)
    return vector / np.linalg.norm(vector)


class _BoundedThreadingServer(ThreadingHTTPServer):
    """At most ``max_handlers`` request threads: the accept loop waits for a free one."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_handlers: int
    ) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_handlers)

    def process_request(self, request: Any, client_address: Any) -> None:
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that drops its kept-alive connection is normal; anything else is printed as usual."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


@contextmanager
def titan_stub(*, max_handlers: int = 32, **settings: Any) -> Iterator[TitanStub]:
    """A running stub on 127.0.0.1 (a free port); ``settings`` set TitanStub fields (models, hold_seconds)."""
    stub = TitanStub(**settings)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            headers = {name.lower(): value for name, value in self.headers.items()}
            if length > MAX_BODY_BYTES + 1024:  # refuse without reading it, and drop the connection
                status, reply_headers, payload = stub._error(
                    None, 400, "ValidationException", f"Request body of {length} bytes exceeds the limit."
                )
                self.close_connection = True
            else:
                status, reply_headers, payload = stub.handle(self.path, headers, self.rfile.read(length))
            self._reply(status, reply_headers, payload)

        def do_GET(self) -> None:
            self._reply(*stub._error(None, 404, "UnknownOperationException", f"no operation at {self.path}"))

        def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = _BoundedThreadingServer(("127.0.0.1", free_port()), Handler, max_handlers)
    # a short poll interval: shutdown() waits up to one interval, once per test
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
