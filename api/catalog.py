"""The service catalog as data (api/catalog.yaml): items, price points, pitch texts, downtime economics."""

from __future__ import annotations

import copy
import string
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from api import estimate
from api.number_checks import FileNumber, FileWholeNumber
from fleet import text_files
from fleet.errors import InvalidInput
from fleet.machine_types import SensorSpec
from fleet.type_checks import Problem, compose_yaml, field_name, line_of

DEFAULT_FILE = Path(__file__).with_name("catalog.yaml")
LANGUAGES = ("en", "de")
PLACEHOLDERS = frozenset({"machine", "machine_type", "failure", "risk", "time_to_failure", "price", "value"})
DEFAULT_SEGMENT = "default"
MAX_MONEY = 10_000_000
TITLE_MAX = 200  # what an offer's title column holds
# The ISO 4217 codes in use (currencies, funds and precious metals, no test or "no currency" codes).
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN
    BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
    KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN
    NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS
    SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND
    VUV WST XAF XAG XAU XCD XCG XDR XOF XPD XPF XPT YER ZAR ZMW ZWG""".split()
)
# Minor-unit digits of the codes that do not have two (ISO 4217; metals and XDR are written with two).
DECIMALS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}


def decimals(currency: str) -> int:
    """How many decimals an amount in `currency` has: 2 for EUR, 0 for JPY, 3 for KWD."""
    return DECIMALS.get(currency, 2)


def money_problem(amount: float, currency: str) -> str | None:
    """Why `amount` is no price in `currency` (not above 0, too large, finer than its unit), or None."""
    if not 0 < amount <= MAX_MONEY:
        return f"a price must be more than 0 and at most {MAX_MONEY:,}"
    return finer_than_unit(amount, currency)


def finer_than_unit(amount: float, currency: str) -> str | None:
    """Why `amount` cannot be an amount of `currency` (more decimals than its minor unit), or None."""
    places = decimals(currency)
    if round(amount, places) != amount:
        return f"{amount} has more decimals than {currency} has ({places})"
    return None


def _in_currency(amount: float, info: ValidationInfo) -> float:
    """Refuse an amount finer than the catalog's currency (the currency comes in the validation context)."""
    currency = (info.context or {}).get("currency")
    problem = money_problem(amount, currency) if currency in ISO_4217 else None
    if problem:
        raise ValueError(problem)
    return amount


Money = Annotated[FileNumber, Field(gt=0, le=MAX_MONEY), AfterValidator(_in_currency)]


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

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    body: str = Field(min_length=1)

    @field_validator("title", "body")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        try:
            fields = [
                (name, spec, conv)
                for _, name, spec, conv in string.Formatter().parse(value)
                if name is not None
            ]
        except ValueError as exc:
            raise ValueError(f"not a valid template: {exc}") from exc
        # Placeholders are filled with text already formatted (money, risk): a format of its own fails.
        formatted = next((name for name, spec, conv in fields if spec or conv), None)
        if formatted is not None:
            raise ValueError(f"write {{{formatted}}} without a format: the catalog formats it")
        names = {name for name, _, _ in fields}
        unknown = names - PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{sorted(unknown)[0]}}}; use {', '.join(sorted(PLACEHOLDERS))}"
            )
        return value


class Downtime(_Strict):
    """What an unplanned failure of a machine type costs its owner."""

    hours: FileNumber = Field(gt=0)
    cost_per_hour: Money


class CatalogItem(_Strict):
    """Something the OEM sells: when it fits, its price points per segment, how to say it."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    min_risk: FileNumber = Field(ge=0, le=1)
    modes: frozenset[str] | None = None
    tiers: frozenset[str] | None = None
    min_lead_hours: FileNumber = Field(default=0.0, ge=0)
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
    exploration: FileNumber = Field(default=0.01, ge=0, le=0.5)
    # Posterior standard deviations added to each offer's log-odds before choosing (upper confidence bound).
    optimism: FileNumber = Field(default=0.5, ge=0, le=3)
    # Above 0, choices follow draws from the posterior instead, its spread scaled: 1 is Thompson sampling.
    temperature: FileNumber = Field(default=0.0, ge=0, le=1)


class Catalog(_Strict):
    """A checked catalog file."""

    version: FileWholeNumber = Field(ge=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    offer_expiry_days: FileWholeNumber = Field(default=30, ge=1, le=365)
    policy: PolicyChoice = PolicyChoice()
    segments: tuple[str, ...] = Field(min_length=1)
    downtime: dict[str, Downtime]
    failures: dict[str, dict[str, str]] = Field(default_factory=dict)
    machine_types: dict[str, dict[str, str]] = Field(default_factory=dict)
    items: tuple[CatalogItem, ...] = Field(min_length=1)

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        if value not in ISO_4217:
            raise ValueError(f"{value} is not an ISO 4217 currency code (EUR, CHF, JPY, …)")
        return value

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


def parse(text: str, *, source: str = "catalog", stored: bool = False) -> Catalog:
    """Check a catalog file's YAML; raise `CatalogFileError` naming every problem's line and field.

    A number must be a YAML number: `true`, `yes` or "12" is refused, never read as 1 or 12. `stored` reads a
    version the database kept as it was added: one added before that check reads true as 1 and "12" as 12
    again, so that offers priced from it stay readable."""
    _node, data, lines, problems = compose_yaml(text, source)
    if problems:
        raise CatalogFileError(problems)
    data = data if data is not None else {}
    context = {"currency": data.get("currency") if isinstance(data, dict) else None}
    try:
        return Catalog.model_validate(data, context=context)
    except ValidationError as exc:
        looser = _as_added_before(data, exc) if stored else None
        if looser is not None:
            try:
                return Catalog.model_validate(looser, context=context)
            except ValidationError:
                pass  # not only its numbers: report the file's problems
        problems = []
        for error in exc.errors():
            path = _path(error["loc"])
            problems.append(Problem(source, line_of(path, lines), field_name(path), error["msg"]))
        raise CatalogFileError(problems) from None


def _path(loc: tuple) -> tuple:
    """A field's path in the file, without pydantic's names of its validators (`function-before[…]`)."""
    return tuple(p for p in loc if not (isinstance(p, str) and "[" in p))


def _as_added_before(data: Any, exc: ValidationError) -> Any | None:
    """`data` with each refused true/false or text read as a number, as pydantic read it before numbers were
    checked (true as 1, "12" as 12); None if any problem is another one."""
    data = copy.deepcopy(data)
    for error in exc.errors():
        path, value = _path(error["loc"]), error["input"]
        if not path or not isinstance(value, bool | str):
            return None
        try:
            number = int(value) if isinstance(value, bool) else float(value)
        except ValueError:
            return None
        try:
            parent = data
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = int(number) if isinstance(number, float) and number.is_integer() else number
        except (KeyError, IndexError, TypeError):  # a key with "[" in it, which `_path` leaves out
            return None
    return data


def read(path: str | Path) -> Catalog:
    """Read and check a catalog file."""
    try:
        text = text_files.read(Path(path))
    except text_files.FileProblem as exc:
        raise CatalogFileError([exc.problem]) from None
    return parse(text, source=str(path))


@cache
def default() -> Catalog:
    """The shipped catalog (read once)."""
    return read(DEFAULT_FILE)


def eligible(
    *, mode: str | None, risk: float, tier: str, lead_hours: float | None, catalog: Catalog | None = None
) -> list[CatalogItem]:
    """Every item that fits this prediction, in catalog order; a prediction naming no mode (None) fits
    only the items for any mode."""
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
    *, mode: str | None, risk: float, tier: str, lead_hours: float | None, catalog: Catalog | None = None
) -> CatalogItem | None:
    """The first catalog item that fits this prediction (the static policy), or None."""
    fits = eligible(mode=mode, risk=risk, tier=tier, lead_hours=lead_hours, catalog=catalog)
    return fits[0] if fits else None


def expected_value(*, risk: float, machine_type: str, catalog: Catalog | None = None) -> float:
    """Avoided downtime cost: probability of the failure times what the failure would cost."""
    table = (catalog or default()).downtime
    downtime = table.get(machine_type, table[DEFAULT_SEGMENT])
    return round(risk * downtime.hours * downtime.cost_per_hour, decimals((catalog or default()).currency))


def format_money(amount: float, currency: str, language: str = "en") -> str:
    """Money as a person writes it, with the currency's decimals: `EUR 1,850.50` (en), `1.850,50 EUR` (de)."""
    text = f"{amount:,.{decimals(currency)}f}"
    if language == "de":
        return text.replace(",", "_").replace(".", ",").replace("_", ".") + f" {currency}"
    return f"{currency} {text}"


def render(
    item: CatalogItem,
    *,
    language: str,
    machine: str,
    machine_type: str,
    mode: str | None,
    risk: float,
    time_to_failure: estimate.TimeToFailure | None,
    now: datetime,
    price: float,
    value: float,
    catalog: Catalog | None = None,
    specs: Mapping[str, SensorSpec] | None = None,
) -> tuple[str, str]:
    """The offer's title and text in `language` (falls back to English), as a person would write them;
    `specs`, the machine type's sensors, name the sensor of an OEM-limit or trend failure mode; no mode
    (None) reads 'signs of a coming failure'. Failure modes and machine types the catalog does not word in
    `language` are spelled without underscores."""
    from models import modes  # with pandas (~1 s of CPU), which `servicecast catalog` never needs

    catalog = catalog or default()
    language = language if language in item.text else "en"
    failures = catalog.failures.get(language, {})
    fields = {
        "machine": machine,
        "machine_type": catalog.machine_types.get(language, {}).get(machine_type)
        or machine_type.replace("_", " "),
        "failure": mode and failures.get(mode) or modes.name(mode, specs, language, in_text=True),
        "risk": f"{risk * 100:.0f} %",
        "time_to_failure": estimate.words(time_to_failure, now, language),
        "price": format_money(price, catalog.currency, language),
        "value": format_money(value, catalog.currency, language),
    }
    text = item.text[language]
    title = text.title.format(**fields)
    # A template within the limit can still grow past it by its placeholders (a long time to failure).
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1].rstrip() + "…"
    return title, " ".join(text.body.format(**fields).split())
