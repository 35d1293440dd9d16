"""The service catalog as data (api/catalog.yaml): items, price points, pitch texts, downtime economics."""

from __future__ import annotations

import string
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from api import estimate
from fleet.errors import InvalidInput
from fleet.type_checks import Problem, compose_yaml, field_name, line_of

DEFAULT_FILE = Path(__file__).with_name("catalog.yaml")
LANGUAGES = ("en", "de")
PLACEHOLDERS = frozenset({"machine", "machine_type", "failure", "risk", "time_to_failure", "price", "value"})
DEFAULT_SEGMENT = "default"
Money = Annotated[float, Field(gt=0, le=10_000_000)]


class CatalogFileError(InvalidInput):
    """A catalog file that cannot be used; every problem is listed with its line."""

    code = "invalid_catalog_file"

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """The title and body templates of an item in one language."""

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1)

    @field_validator("title", "body")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"not a valid template: {exc}") from exc
        unknown = names - PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{sorted(unknown)[0]}}}; use {', '.join(sorted(PLACEHOLDERS))}"
            )
        return value


class Downtime(_Strict):
    """What an unplanned failure of a machine type costs its owner."""

    hours: float = Field(gt=0)
    cost_per_hour: Money


class CatalogItem(_Strict):
    """Something the OEM sells: when it fits, its price points per segment, how to say it."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    min_risk: float = Field(ge=0, le=1)
    modes: frozenset[str] | None = None
    tiers: frozenset[str] | None = None
    min_lead_hours: float = Field(default=0.0, ge=0)
    prices: dict[str, Annotated[tuple[Money, ...], Field(min_length=1, max_length=3)]]
    text: dict[str, Text]

    @field_validator("text")
    @classmethod
    def _every_language(cls, value: dict[str, Text]) -> dict[str, Text]:
        missing = [lang for lang in LANGUAGES if lang not in value]
        if missing:
            raise ValueError(f"needs a text in {', '.join(missing)}")
        return value

    @property
    def price(self) -> float:
        """The list price: the first price point of the default segment."""
        return self.price_points(DEFAULT_SEGMENT)[0]

    def price_points(self, segment: str | None) -> tuple[float, ...]:
        """The segment's price points (the first is its list price), else the default segment's."""
        return self.prices.get(segment or DEFAULT_SEGMENT) or self.prices[DEFAULT_SEGMENT]


class PolicyChoice(_Strict):
    """Which offer policy proposes (api/offer_policy.py) and its bounded exploration share."""

    name: Literal["first_fit", "learning"] = "first_fit"
    exploration: float = Field(default=0.01, ge=0, le=0.5)
    # Posterior standard deviations added to each offer's log-odds before choosing (upper confidence bound).
    optimism: float = Field(default=0.5, ge=0, le=3)
    # Above 0, choices follow draws from the posterior instead, its spread scaled: 1 is Thompson sampling.
    temperature: float = Field(default=0.0, ge=0, le=1)


class Catalog(_Strict):
    """A checked catalog file."""

    version: int = Field(ge=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    offer_expiry_days: int = Field(default=30, ge=1, le=365)
    policy: PolicyChoice = PolicyChoice()
    segments: tuple[str, ...] = Field(min_length=1)
    downtime: dict[str, Downtime]
    failures: dict[str, dict[str, str]] = Field(default_factory=dict)
    items: tuple[CatalogItem, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        if DEFAULT_SEGMENT not in self.downtime:
            raise ValueError("downtime needs a `default` entry")
        keys = [item.key for item in self.items]
        if len(set(keys)) != len(keys):
            raise ValueError(f"item keys must be unique, got {keys}")
        for item in self.items:
            if DEFAULT_SEGMENT not in item.prices:
                raise ValueError(f"item {item.key}: prices need a `default` segment")
            unknown = set(item.prices) - set(self.segments) - {DEFAULT_SEGMENT}
            if unknown:
                raise ValueError(f"item {item.key}: unknown segment {sorted(unknown)[0]}")
        return self

    def item(self, key: str) -> CatalogItem | None:
        """The item with this key, or None."""
        return next((item for item in self.items if item.key == key), None)


def parse(text: str, *, source: str = "catalog") -> Catalog:
    """Check a catalog file's YAML; raise `CatalogFileError` naming every problem's line and field."""
    _node, data, lines, problems = compose_yaml(text, source)
    if problems:
        raise CatalogFileError(problems)
    try:
        return Catalog.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
            problems.append(Problem(source, line_of(path, lines), field_name(path), error["msg"]))
        raise CatalogFileError(problems) from None


def read(path: str | Path) -> Catalog:
    """Read and check a catalog file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogFileError([Problem(str(path), None, "file", exc.strerror or str(exc))]) from exc
    return parse(text, source=str(path))


@cache
def default() -> Catalog:
    """The shipped catalog (read once)."""
    return read(DEFAULT_FILE)


def eligible(
    *, mode: str, risk: float, tier: str, lead_hours: float | None, catalog: Catalog | None = None
) -> list[CatalogItem]:
    """Every item that fits this prediction, in catalog order."""
    out = []
    for item in (catalog or default()).items:
        if risk < item.min_risk:
            continue
        if item.modes is not None and mode not in item.modes:
            continue
        if item.tiers is not None and tier not in item.tiers:
            continue
        if lead_hours is not None and lead_hours < item.min_lead_hours:
            continue
        out.append(item)
    return out


def choose(
    *, mode: str, risk: float, tier: str, lead_hours: float | None, catalog: Catalog | None = None
) -> CatalogItem | None:
    """The first catalog item that fits this prediction (the static policy), or None."""
    fits = eligible(mode=mode, risk=risk, tier=tier, lead_hours=lead_hours, catalog=catalog)
    return fits[0] if fits else None


def expected_value(*, risk: float, machine_type: str, catalog: Catalog | None = None) -> float:
    """Avoided downtime cost: probability of the failure times what the failure would cost."""
    table = (catalog or default()).downtime
    downtime = table.get(machine_type, table[DEFAULT_SEGMENT])
    return round(risk * downtime.hours * downtime.cost_per_hour, 2)


def format_money(amount: float, currency: str, language: str = "en") -> str:
    """Money as a person writes it, with cents: `EUR 1,850.50` (en), `1.850,50 EUR` (de)."""
    text = f"{amount:,.2f}"
    if language == "de":
        return text.replace(",", "_").replace(".", ",").replace("_", ".") + f" {currency}"
    return f"{currency} {text}"


def render(
    item: CatalogItem,
    *,
    language: str,
    machine: str,
    machine_type: str,
    mode: str,
    risk: float,
    time_to_failure: estimate.TimeToFailure | None,
    now: datetime,
    price: float,
    value: float,
    catalog: Catalog | None = None,
) -> tuple[str, str]:
    """The offer's title and text in `language` (falls back to English), as a person would write them."""
    catalog = catalog or default()
    language = language if language in item.text else "en"
    failures = catalog.failures.get(language, {})
    fields = {
        "machine": machine,
        "machine_type": machine_type.replace("_", " "),
        "failure": failures.get(mode, mode.replace("_", " ")),
        "risk": f"{risk * 100:.0f} %",
        "time_to_failure": estimate.words(time_to_failure, now, language),
        "price": format_money(price, catalog.currency, language),
        "value": format_money(value, catalog.currency, language),
    }
    text = item.text[language]
    return text.title.format(**fields), " ".join(text.body.format(**fields).split())
