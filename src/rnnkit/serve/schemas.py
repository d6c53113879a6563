"""The JSON of the HTTP API (pydantic models; they are also the OpenAPI schema at ``/docs``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from .config import Limits

#: the default bounds; :func:`bounded` makes the request models of other :class:`Limits`
_L = Limits()
#: stream ids: letters, digits and ``. _ : @ -``, starting with a letter or digit, at most 128 characters
STREAM_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
#: a value in a row of a series: a number, a string (a timestamp) or null (missing)
Value = float | int | str | None
Row = dict[str, Value]
_MAX_TOKEN = 200
_MAX_COLUMNS = 64
_TOP = "language model: how many likely next tokens to list"
_LENGTH = "language model: tokens to generate"
_BEAM = "translator: beam size (default: the model's)"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sampling(Strict):
    """How a language model draws tokens (as ``rnnkit generate``)."""

    temperature: float = Field(1.0, ge=0, le=100, description="0 = greedy")
    top_k: int | None = Field(None, ge=1, le=100_000)
    top_p: float | None = Field(None, ge=1e-6, le=1, description="nucleus mass (at least 1e-6)")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="for reproducible draws")

    @field_validator("temperature")
    @classmethod
    def _not_tiny(cls, value: float) -> float:
        # logits / 1e-300 overflow to inf: greedy is temperature 0
        if 0 < value < 1e-3:
            raise ValueError("temperature must be 0 (greedy) or at least 0.001")
        return value


class ObserveRequest(Strict):
    """The next observation(s) of a stream: exactly one of ``row``/``rows`` (forecaster), ``token``/``tokens``
    (tagger, language model) or ``text`` (language model: tokenised by the model's tokenizer)."""

    seq: int | None = Field(
        None,
        ge=1,
        le=2**62,
        description="this call's number in the stream (1, 2, ...): a retry of the last call returns its stored "
        "answer; any other number than the next is refused (409) with the expected one",
    )
    row: dict[str, Value] | None = Field(None, max_length=_MAX_COLUMNS, description="one row: column -> value")
    rows: list[dict[str, Value]] | None = Field(None, min_length=1, max_length=_L.max_chunk)
    token: str | None = Field(None, min_length=1, max_length=_MAX_TOKEN)
    tokens: list[str] | None = Field(None, min_length=1, max_length=_L.max_chunk)
    text: str | None = Field(None, min_length=1, max_length=_L.max_text)
    top: int = Field(5, ge=1, le=_L.max_top, description=_TOP)
    sample: Sampling | None = Field(None, description="language model: also draw the next token")


class TokenProb(BaseModel):
    token: str
    p: float


class ObserveAnswer(BaseModel):
    """What the model says after the observation: the fields of the served task."""

    ready: bool | None = Field(None, description="forecaster: False until the stream has `timestep` rows")
    needed: int | None = Field(None, description="forecaster: rows still needed before the first forecast")
    forecast: list[dict[str, Any]] | None = Field(None, description="forecaster: one row per horizon step")
    tags: list[str] | None = Field(None, description="tagger: the tag of each observed token")
    next: list[TokenProb] | None = Field(None, description="language model: the most likely next tokens")
    sample: str | None = Field(None, description="language model: a drawn next token")


class ObserveResponse(BaseModel):
    stream: str
    seq: int = Field(description="calls applied to the stream, this one included")
    steps: int = Field(description="observations applied to the stream")
    replayed: bool = Field(False, description="True when this is the stored answer to a retried seq")
    answer: ObserveAnswer


class StreamInfo(BaseModel):
    stream: str
    seq: int
    steps: int
    created: float
    updated: float
    expires: float | None = Field(None, description="Unix time the stream expires if idle (None: never)")


class PredictItem(Strict):
    """One whole input: ``rows`` (forecaster: the series), ``text`` (classifier, translator, tagger as
    whitespace-separated tokens, language-model prompt) or ``tokens`` (tagger)."""

    rows: list[dict[str, Value]] | None = Field(None, min_length=1, max_length=_L.max_rows)
    text: str | None = Field(None, max_length=_L.max_text)
    tokens: list[str] | None = Field(None, min_length=1, max_length=_L.max_chunk)
    length: int | None = Field(None, ge=1, le=_L.max_generate, description=_LENGTH)


class PredictRequest(Strict):
    inputs: list[PredictItem] = Field(min_length=1, max_length=_L.max_items)
    beam: int | None = Field(None, ge=1, le=_L.max_beam, description=_BEAM)
    sampling: Sampling | None = Field(None, description="language model: how to draw")


class PredictResponse(BaseModel):
    task: str
    outputs: list[dict[str, Any]]


class FieldInfo(BaseModel):
    name: str
    type: str
    description: str = ""


class ModelInfo(BaseModel):
    task: str
    streams: bool = Field(description="whether /v1/streams/{id}/observe works for this model")
    streaming: str = Field(description="what a stream is for this model, or why it cannot stream")
    observe: list[FieldInfo]
    predict: list[FieldInfo]
    outputs: list[FieldInfo]
    facts: dict[str, Any]


class ErrorBody(BaseModel):
    detail: str
    field: str | None = None
    expected: int | None = Field(None, description="409: the seq the stream expects next")
    request_id: str | None = Field(None, description="503: the id of the failure in the server's log")


class Health(BaseModel):
    status: str
    task: str
    streams: int | None = None


def bounded(limits: Limits) -> tuple[type[ObserveRequest], type[PredictRequest]]:
    """The request models with the bounds of ``limits`` (what the app validates and what /docs shows)."""
    rows = list[dict[str, Value]] | None
    observe = create_model(
        "ObserveRequest",
        __base__=ObserveRequest,
        __doc__=ObserveRequest.__doc__,
        rows=(rows, Field(None, min_length=1, max_length=limits.max_chunk)),
        tokens=(list[str] | None, Field(None, min_length=1, max_length=limits.max_chunk)),
        text=(str | None, Field(None, min_length=1, max_length=limits.max_text)),
        top=(int, Field(5, ge=1, le=limits.max_top, description=_TOP)),
    )
    item = create_model(
        "PredictItem",
        __base__=PredictItem,
        __doc__=PredictItem.__doc__,
        rows=(rows, Field(None, min_length=1, max_length=limits.max_rows)),
        text=(str | None, Field(None, max_length=limits.max_text)),
        tokens=(list[str] | None, Field(None, min_length=1, max_length=limits.max_chunk)),
        length=(int | None, Field(None, ge=1, le=limits.max_generate, description=_LENGTH)),
    )
    predict = create_model(
        "PredictRequest",
        __base__=PredictRequest,
        inputs=(list[item], Field(min_length=1, max_length=limits.max_items)),  # type: ignore[valid-type]
        beam=(int | None, Field(None, ge=1, le=limits.max_beam, description=_BEAM)),
    )
    return observe, predict
