"""What the Enrichment schema admits but no posting says: checked on every answer, after the
schema, so an answer that breaks one is invalid (and its repair tells the model why).

A constrained decoder enforces only what the schema says, and the schema admits
``"currency": "johns"`` and ``"years_experience": 2018``. The rules:

- a currency is an active ISO 4217 code;
- salary bounds are not negative and the minimum is not above the maximum;
- the amounts fit their period, for currencies whose unit is worth about a dollar or more
  (below: hour 1,000, day 10,000, month 200,000, year 5,000,000; a year at least 1,000):
  ``80000`` an hour is a yearly figure with the wrong period. Currencies of smaller units
  (JPY, INR, KRW, …) are not judged: their amounts overlap across periods;
- years of experience within 0-50;
- skills and tech stack without duplicates (case and spacing ignored), at most 25 of each,
  each at most 60 characters; at most 10 key requirements of at most 200 characters; a
  summary of at most 500 characters.

These are checks, not the published schema: records written before them still read, and the
schema's contract is unchanged. Servers whose constrained decoding enforces bounds (llama.cpp's
grammar, behind Ollama and most self-hosted servers) are sent them too (``bounded_schema``):
a tiny model otherwise fills a list until its token limit cuts the answer off.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from streams.models import Enrichment, SalaryRange
from streams.schemas import enrichment_schema

__all__ = ["ISO_4217", "bounded_schema", "implausible"]

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
YEAR_MIN = 1_000
MAX_YEARS = 50
MAX_ITEMS = {"skills": 25, "tech_stack": 25, "key_requirements": 10}
MAX_ITEM_CHARS = {"skills": 60, "tech_stack": 60, "key_requirements": 200}
MAX_SUMMARY_CHARS = 500


def implausible(answer: Enrichment) -> list[str]:
    """What is wrong with ``answer``, each said so a model can correct it; empty: nothing."""
    found = _salary(answer.salary) if answer.salary is not None else []
    if answer.years_experience is not None and not 0 <= answer.years_experience <= MAX_YEARS:
        found.append(f"years_experience {answer.years_experience} is not within 0-{MAX_YEARS}")
    for field, limit in MAX_ITEMS.items():
        items: list[str] = getattr(answer, field)
        if len(items) > limit:
            found.append(f"{field} has {len(items)} items, at most {limit}")
        if field != "key_requirements":
            found += _duplicates(field, items)
        found += [
            f"{field} item {item[:20]!r}… is longer than {MAX_ITEM_CHARS[field]} characters"
            for item in items
            if len(item) > MAX_ITEM_CHARS[field]
        ]
    if len(answer.summary) > MAX_SUMMARY_CHARS:
        found.append(f"summary has {len(answer.summary)} characters, at most {MAX_SUMMARY_CHARS}")
    return found


def _salary(salary: SalaryRange) -> list[str]:
    found = []
    if salary.currency is not None and salary.currency not in ISO_4217:
        found.append(f"salary.currency {salary.currency!r} is not an ISO 4217 code (e.g. EUR)")
    amounts = [a for a in (salary.min, salary.max) if a is not None]
    if any(a < 0 for a in amounts):
        found.append("salary amounts must not be negative")
    if salary.min is not None and salary.max is not None and salary.min > salary.max:
        found.append(f"salary.min {salary.min:g} is above salary.max {salary.max:g}")
    if salary.currency in WHOLE_UNITS and salary.period is not None and amounts:
        top, bottom = max(amounts), min(amounts)
        if top > PERIOD_MAX[salary.period]:
            found.append(
                f"{top:g} {salary.currency} a {salary.period} is implausible: check the period"
            )
        elif salary.period == "year" and bottom < YEAR_MIN:
            found.append(f"{bottom:g} {salary.currency} a year is implausible: check the period")
    return found


def _duplicates(field: str, items: list[str]) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for item in items:
        key = " ".join(item.casefold().split())
        if key in seen:
            repeated.append(item)
        seen.add(key)
    return [f"{field} lists {item!r} more than once" for item in repeated]


@functools.cache
def bounded_schema() -> dict[str, Any]:
    """The Enrichment schema with the bounds above as JSON Schema keywords (maxLength,
    maxItems, minimum, maximum, pattern), for constrained decoders that enforce them. What
    the keywords cannot say (duplicates, the period, min <= max) stays a check."""
    schema = copy.deepcopy(enrichment_schema())
    fields = schema["properties"]
    fields["summary"]["maxLength"] = MAX_SUMMARY_CHARS
    for field, limit in MAX_ITEMS.items():
        fields[field]["maxItems"] = limit
        fields[field]["items"]["maxLength"] = MAX_ITEM_CHARS[field]
    fields["years_experience"] |= {"minimum": 0, "maximum": MAX_YEARS}
    salary = fields["salary"]["properties"]
    salary["min"]["minimum"] = salary["max"]["minimum"] = 0
    salary["currency"]["pattern"] = "^[A-Z]{3}$"
    result: dict[str, Any] = schema
    return result
