"""The structured output asked of the providers: the Enrichment contract.

Version 2 (``Enrichment``) cannot hold the nonsense version 1 (``EnrichmentV1``) admitted,
``"currency": "johns"`` or ``"years_experience": 2018``; a constrained decoder enforces only
what the schema says. Its JSON Schema says what JSON Schema can: an ISO 4217 currency, bounds
on years, amounts, lengths and list sizes, lists without duplicates. The rest is checked here,
as part of validation, so an answer that breaks it is invalid (and a repair is told why):

- salary amounts come with their currency and period (amounts with neither tell a consumer
  nothing: such a salary is null), are whole units or cents, and are at most ``AMOUNT_MAX``
  in any currency (a real model wrote ``1.0248679e-09`` to ``1.0248679e+35`` with neither);
- the minimum salary is not above the maximum;
- the amounts fit their period, for currencies whose unit is worth about a dollar or more
  (below: hour 1,000, day 10,000, month 200,000, year 5,000,000; a year at least 1,000):
  ``80000`` an hour is a yearly figure with the wrong period. Currencies of smaller units
  (JPY, INR, KRW, …) are not judged: their amounts overlap across periods;
- no duplicates in skills or tech stack with case and spacing ignored (``uniqueItems`` in
  the schema compares exact strings).

Version 1 stays readable: records written before version 2 hold ``EnrichmentV1`` answers,
and version 2 is a narrowing of it (every version 2 answer is a valid version 1 answer).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from streams.message import Message

__all__ = [
    "ENRICHMENT_VERSION",
    "ISO_4217",
    "Enrichment",
    "EnrichmentV1",
    "SalaryRange",
    "SalaryRangeV1",
]

ENRICHMENT_VERSION: Literal[2] = 2

# The active codes, as a text to read at a glance (a list of 180 strings would not be).
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWG""".split()  # noqa: SIM905
)
# Units worth roughly a US dollar or more: their amounts tell the period apart.
WHOLE_UNITS = frozenset(
    """AED AUD BGN BHD BND BRL CAD CHF CNY DKK EUR GBP GEL HKD ILS JOD KWD KYD MYR NOK NZD OMR
    PAB PEN PLN QAR RON SAR SEK SGD TRY USD ZAR""".split()  # noqa: SIM905
)
PERIOD_MAX = {"hour": 1_000, "day": 10_000, "month": 200_000, "year": 5_000_000}
# A yearly pay of a million US dollars in the currency of the smallest unit (the Iranian
# rial, about 600,000 to the dollar on the market) stays below this.
AMOUNT_MAX = 1e12
YEAR_MIN = 1_000
MAX_YEARS = 50
MAX_SUMMARY_CHARS = 500

Period = Literal["hour", "day", "month", "year"]
Seniority = Literal["intern", "junior", "mid", "senior", "lead", "principal", "unknown"]
RoleFamily = Literal[
    "engineering",
    "data",
    "design",
    "product",
    "marketing",
    "sales",
    "operations",
    "support",
    "finance",
    "people",
    "other",
]
RemotePolicy = Literal["remote", "hybrid", "onsite", "unknown"]


def _iso_4217(code: str) -> str:
    if code not in ISO_4217:
        raise ValueError(f"{code!r} is not an ISO 4217 code (e.g. EUR)")
    return code


def _without_duplicates(items: list[str]) -> list[str]:
    seen: set[str] = set()
    for item in items:
        key = " ".join(item.casefold().split())
        if key in seen:
            raise ValueError(f"{item!r} is listed more than once")
        seen.add(key)
    return items


CurrencyCode = Annotated[
    str,
    AfterValidator(_iso_4217),
    WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$", "enum": sorted(ISO_4217)}),
]


Skill = Annotated[str, Field(max_length=60)]
Skills = Annotated[
    list[Skill],
    Field(max_length=25, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_without_duplicates),
]
Requirement = Annotated[str, Field(max_length=200)]
Requirements = Annotated[list[Requirement], Field(max_length=10)]


# --- Version 1: every field required, optional values ``X | None``, no bounds ------------


class SalaryRangeV1(Message):
    min: float | None
    max: float | None
    currency: str | None = Field(description="ISO 4217 code, e.g. EUR")
    period: Period | None


class EnrichmentV1(Message):
    summary: str = Field(description="Two sentences at most.")
    seniority: Seniority
    role_family: RoleFamily
    skills: list[str]
    tech_stack: list[str]
    years_experience: int | None = Field(description="Minimum years asked for, if stated.")
    remote_policy: RemotePolicy
    salary: SalaryRangeV1 | None
    key_requirements: list[str]


# --- Version 2: the same fields, narrowed --------------------------------------------------


class SalaryRange(SalaryRangeV1):
    """min is not above max, and the amounts fit the period (not 80000 an hour)."""

    min: float | None = Field(ge=0)
    max: float | None = Field(ge=0)
    currency: CurrencyCode | None = Field(description="ISO 4217 code, e.g. EUR")

    @model_validator(mode="after")
    def _check_amounts(self) -> SalaryRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"salary.min {self.min:g} is above salary.max {self.max:g}")
        amounts = [a for a in (self.min, self.max) if a is not None]
        if not amounts:
            return self
        if self.currency is None or self.period is None:
            raise ValueError(
                "salary amounts need their currency and period: when the posting states "
                "no amount with both, salary is null"
            )
        for amount in amounts:
            if amount > AMOUNT_MAX:
                raise ValueError(f"{amount:g} {self.currency} is more than any pay")
            # as written in the answer's JSON (repr is the shortest text that reads back)
            if Decimal(repr(amount)).as_tuple().exponent < -2:  # type: ignore[operator]
                raise ValueError(f"{amount!r} is not in whole units or cents")
        if self.currency not in WHOLE_UNITS:
            return self
        if max(amounts) > PERIOD_MAX[self.period]:
            amount = max(amounts)
        elif self.period == "year" and min(amounts) < YEAR_MIN:
            amount = min(amounts)
        else:
            return self
        raise ValueError(
            f"{amount:g} {self.currency} a {self.period} is implausible: check the period"
        )


class Enrichment(EnrichmentV1):
    """Skills and tech stack name nothing twice, with case and spacing ignored."""

    contract_version: ClassVar[int] = ENRICHMENT_VERSION

    summary: str = Field(max_length=MAX_SUMMARY_CHARS, description="Two sentences at most.")
    skills: Skills
    tech_stack: Skills
    years_experience: int | None = Field(
        ge=0, le=MAX_YEARS, description="Minimum years asked for, if stated."
    )
    salary: SalaryRange | None
    key_requirements: Requirements
