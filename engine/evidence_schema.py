"""The evidence document model (pydantic) and its error messages, in the words of
`docs/evidence-format.md`.

`validate_document` checks one already-parsed document against the model and the active
pack's `Vocabulary`, and turns every problem into an `InputError` whose path places it in
its file (`models[3].evaluations[2].score`). Reading files and limits on size and depth
are `engine.evidence_reading`'s; checks across documents are `engine.evidence`'s.
"""

import datetime
import difflib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Self, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from engine.errors import InputError, within
from engine.unicode_check import lone_surrogates

CHANNELS = ("internal", "api", "consumer", "cloud_platform", "open_weights")
VERDICTS = ("crossed", "cannot_rule_out", "ruled_out")
SAFEGUARD_STATUSES = ("implemented", "partial", "planned", "absent")
ELICITATIONS = ("full", "partial", "none")
PURPOSES = ("rule_out", "rule_in")


@dataclass(frozen=True)
class Vocabulary:
    """The names the active rule pack defines; evidence naming anything else is refused."""

    capabilities: frozenset[str]
    safeguards: frozenset[str]  # standard ids ("asl3-security") and element ids ("….audits")
    # The framework these names are of, and (name, framework) for the names of other
    # built-in frameworks, so evidence written for one of them is told which to use.
    framework: str = ""
    elsewhere: tuple[tuple[str, str], ...] = ()
    # The levels a last comprehensive assessment may have determined (the framework's
    # headline levels, lowest first), or None when the framework reads no such reference.
    levels: tuple[str, ...] | None = None

    def other_framework(self, name: str) -> str | None:
        """The other built-in framework that has `name`, if any."""
        return next((fw for known, fw in self.elsewhere if known == name), None)


def describe(value: object) -> str:
    """Show a rejected input value briefly, in YAML spelling (`null`, `true`, `'high'`).

    >>> describe(None), describe(True), describe("high"), describe([1]), describe(2.5)
    ('null', 'true', "'high'", 'a list', '2.5')
    """
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, dict | list | tuple):
        return "a mapping" if isinstance(value, dict) else "a list"
    if isinstance(value, datetime.date):
        return f"date {value.isoformat()}"
    if not isinstance(value, str | int | float):
        return f"a {type(value).__name__}"
    text = repr(value[:47] + "..." if isinstance(value, str) and len(value) > 50 else value)
    return text if len(text) <= 52 else text[:47] + "..."  # a long number


def unknown_name(kind: str, value: str, choices: Sequence[str], label: str) -> str:
    """`unknown KIND 'VALUE' (did you mean 'X'?); LABEL A, B, C`: the fix and the options.

    >>> unknown_name("verdict", "crosed", ("crossed", "ruled_out"), "expected one of")
    "unknown verdict 'crosed' (did you mean 'crossed'?); expected one of crossed, ruled_out"
    """
    guess = difflib.get_close_matches(value, choices, n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return f"unknown {kind} {value!r}{hint}; {label} {', '.join(choices) or '(none)'}"


def _error(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the user as it is."""
    return PydanticCustomError("evidence", "{message}", {"message": message})


def _one_of(kind: str, choices: tuple[str, ...]) -> AfterValidator:
    """Accept only one of a fixed set of strings defined by the evidence format."""

    def check(value: str) -> str:
        if value not in choices:
            raise _error(unknown_name(kind, value, choices, "expected one of"))
        return value

    return AfterValidator(check)


def _known(kind: str, names: Callable[[Vocabulary], frozenset[str]]) -> AfterValidator:
    """Accept only names of the Vocabulary given as validation context (any, without one)."""

    def check(value: str, info: ValidationInfo) -> str:
        vocabulary = (info.context or {}).get("vocabulary")
        if vocabulary is not None and value not in names(vocabulary):
            message = unknown_name(kind, value, sorted(names(vocabulary)), "known:")
            other = vocabulary.other_framework(value)
            if other is not None:
                message += (f"; {value!r} is a name of framework {other}: assess with "
                            f"--framework {other}, or translate with asl crosswalk FILE "
                            f"--to {vocabulary.framework or 'FRAMEWORK'}")
            raise _error(message)
        return value

    return AfterValidator(check)


def _level() -> AfterValidator:
    """Accept only a level of the Vocabulary's framework (any, without one, or when the
    framework reads no reference to an earlier assessment)."""

    def check(value: str, info: ValidationInfo) -> str:
        vocabulary = (info.context or {}).get("vocabulary")
        levels = vocabulary.levels if vocabulary is not None else None
        if levels is not None and value not in levels:
            raise _error(unknown_name("determination", value, levels, "expected one of"))
        return value

    return AfterValidator(check)


def _iso_date(value: object) -> object:
    """A YAML date or an ISO date string, as `YYYY-MM-DD`; anything else is refused."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise _error(f"expected an ISO date (YYYY-MM-DD), got {describe(value)}")


def _absent_as(default: object) -> BeforeValidator:
    """An optional field written as `null` (in YAML, a key with nothing after it) means
    the field was not given: it takes its default."""
    return BeforeValidator(lambda value: default if value is None else value)


Number = Annotated[float, Field(allow_inf_nan=False)]
PositiveNumber = Annotated[float, Field(allow_inf_nan=False, gt=0)]
NonNegativeNumber = Annotated[float, Field(allow_inf_nan=False, ge=0)]
ModelId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")]
EntryId = Annotated[str, Field(min_length=1)]
IsoDate = Annotated[str, BeforeValidator(_iso_date)]
Threshold = Annotated[str, _known("threshold", lambda v: v.capabilities)]


class _Strict(BaseModel):
    """Shared settings: unknown keys refused, no type coercion, immutable once validated."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LastAssessment(_Strict):
    """The latest comprehensively assessed model in this model's line (RSP §3.1)."""

    model: ModelId
    effective_compute_flop: PositiveNumber | None = None
    months_since: NonNegativeNumber
    determination: Annotated[str, _level()] | None = None


class ModelInfo(_Strict):
    """Who the model is and which earlier models it refers to."""

    id: ModelId
    name: str | None = None
    developer: str | None = None
    effective_compute_flop: PositiveNumber | None = None
    predecessor: ModelId | None = None
    last_comprehensive_assessment: LastAssessment | None = None


class Evaluation(_Strict):
    """A quantitative capability evaluation; `warning_score` is never None once validated."""

    id: EntryId
    threshold: Threshold
    purpose: Annotated[str, _absent_as("rule_out"), _one_of("purpose", PURPOSES)] = "rule_out"
    score: Number
    threshold_score: Number
    warning_score: Number | None = None
    elicitation: Annotated[str, _absent_as("full"), _one_of("elicitation", ELICITATIONS)] = (
        "full")
    name: str | None = None
    source: str | None = None
    date: IsoDate | None = None

    @field_validator("warning_score")
    @classmethod
    def _within_threshold(cls, value: float | None, info: ValidationInfo) -> float | None:
        limit = info.data.get("threshold_score")
        if value is not None and limit is not None and value > limit:
            raise _error(f"warning_score {value!r} is above threshold_score {limit!r}")
        return value

    @model_validator(mode="after")
    def _default_warning(self) -> Self:
        if self.warning_score is None:  # the format's default: no safety margin
            object.__setattr__(self, "warning_score", self.threshold_score)
        return self


class Finding(_Strict):
    """An expert or red-team judgement about one capability."""

    id: EntryId
    threshold: Threshold
    verdict: Annotated[str, _one_of("verdict", VERDICTS)]
    source: str | None = None
    date: IsoDate | None = None


class Deployment(_Strict):
    """How the model is made available; a document without one is not deployed."""

    channels: Annotated[list[Annotated[str, _one_of("channel", CHANNELS)]], _absent_as([])] = []
    fine_tuning_access: Annotated[bool, _absent_as(False)] = False

    @field_validator("channels")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        repeated = sorted({channel for channel in value if value.count(channel) > 1})
        if repeated:
            raise _error(f"duplicate channel {repeated[0]!r}")
        return value


class SafeguardEntry(_Strict):
    """The status of one safeguard standard or element of the pack's catalogue."""

    id: Annotated[str, _known("safeguard", lambda v: v.safeguards)]
    status: Annotated[str, _one_of("status", SAFEGUARD_STATUSES)]
    evidence: str | None = None


class ModelDocument(_Strict):
    """Everything known about one model: the unit that is assessed."""

    model: ModelInfo
    evaluations: Annotated[list[Evaluation], _absent_as([])] = []
    findings: Annotated[list[Finding], _absent_as([])] = []
    deployment: Deployment | None = None
    safeguards: Annotated[list[SafeguardEntry], _absent_as([])] = []


def path_in(where: str, loc: Sequence[int | str]) -> str:
    """The path of `loc` in the document at `where`: `models[3].evaluations[2].score`.

    >>> path_in("models[3]", ("evaluations", 2, "score"))
    'models[3].evaluations[2].score'
    """
    path = ""
    for part in loc:
        if isinstance(part, str) and not part.isprintable():  # a line break in a key
            part = json.dumps(part)
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return within(where, path)


def _model_at(loc: Sequence[int | str]) -> type[BaseModel]:
    """The model class that validates the mapping at `loc` of a document."""
    model: Any = ModelDocument
    for part in loc:
        if isinstance(part, str):  # unwrap `X | None` and `list[X]` down to the model X
            model = model.model_fields[part].annotation
            while not (isinstance(model, type) and issubclass(model, BaseModel)):
                model = next(arg for arg in get_args(model) if arg is not type(None))
    return model


_MESSAGES = {
    "missing": "field required",
    "float_type": "expected a number, got {got}",
    "finite_number": "expected a finite number, got {got}",
    "greater_than": "expected a number greater than {gt:g}, got {got}",
    "greater_than_equal": "expected a number at least {ge:g}, got {got}",
    "string_type": "expected a string, got {got}",
    "string_too_short": "expected a non-empty string",
    "string_pattern_mismatch": "invalid model id {got}; expected 1 to 128 lowercase letters, "
    "digits, '.', '_' or '-', starting with a letter or digit",
    "bool_type": "expected true or false, got {got}",
    "list_type": "expected a list, got {got}",
    "model_type": "expected a mapping, got {got}",
}


def _translate(error: ErrorDetails) -> tuple[Sequence[int | str], str]:
    """A pydantic error as (loc, message), in the evidence format's own words."""
    loc, kind = error["loc"], error["type"]
    if kind == "extra_forbidden":
        fields = sorted(_model_at(loc[:-1]).model_fields)
        return loc, unknown_name("field", str(loc[-1]), fields, "expected one of")
    if kind == "invalid_key":
        return loc[:-1], f"field names must be strings, got {describe(loc[-1])}"
    if kind == "float_type" and type(error["input"]) is int:  # too large for a float
        return loc, f"number out of range: {describe(error['input'])}"
    if kind not in _MESSAGES:
        return loc, error["msg"]  # our own messages, and any pydantic adds later
    return loc, _MESSAGES[kind].format(got=describe(error["input"]), **error.get("ctx", {}))


def _duplicate_ids(data: object) -> list[tuple[Sequence[int | str], str]]:
    """(loc, message) for each repeated id; evaluations and findings share one namespace."""
    problems: list[tuple[Sequence[int | str], str]] = []
    for sections in (("evaluations", "findings"), ("safeguards",)):
        first: dict[str, str] = {}
        for section in sections:
            items = data.get(section) if isinstance(data, dict) else None
            for i, item in enumerate(items if isinstance(items, list) else []):
                ident = item.get("id") if isinstance(item, dict) else None
                if not isinstance(ident, str):
                    continue
                if ident in first:
                    message = f"duplicate id {ident!r} (also {first[ident]})"
                    problems.append(((section, i, "id"), message))
                else:
                    first[ident] = f"{section}[{i}]"
    return problems


def validate_document(
    data: object, file: str, where: str, vocabulary: Vocabulary
) -> tuple[ModelDocument | None, list[InputError]]:
    """`parse_document` for data whose shape was already checked with its whole file."""
    problems = _duplicate_ids(data)
    document = None
    if not_unicode := lone_surrogates(data):  # each once, not again as pydantic words it
        problems += not_unicode
    else:
        try:
            document = ModelDocument.model_validate(data, context={"vocabulary": vocabulary})
        except ValidationError as exc:
            problems += [_translate(error) for error in exc.errors()]
    ident = model_id(data)
    errors = sorted(InputError(file, path_in(where, loc), message, ident)
                    for loc, message in problems)
    return (None if errors else document), errors


def model_id(data: object) -> str | None:
    """The `model.id` of a document's data, if it can be read (a rejected document's
    id lets the portfolio stop the models that reference it)."""
    model = data.get("model") if isinstance(data, dict) else None
    ident = model.get("id") if isinstance(model, dict) else None
    return ident if isinstance(ident, str) else None
