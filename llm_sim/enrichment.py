"""A plausible Enrichment derived from the job text, so that different jobs get different
answers. Keyword rules, nothing clever: the simulator stands in for a model, not for a
good one."""

from __future__ import annotations

import re
from typing import Any

SKILLS = {
    "python": "Python",
    "java": "Java",
    "kotlin": "Kotlin",
    "golang": "Go",
    " go ": "Go",
    "rust": "Rust",
    "typescript": "TypeScript",
    "javascript": "JavaScript",
    "react": "React",
    "sql": "SQL",
    "kafka": "Kafka",
    "spark": "Spark",
    "aws": "AWS",
    "gcp": "GCP",
    "azure": "Azure",
    "kubernetes": "Kubernetes",
    "docker": "Docker",
    "terraform": "Terraform",
    "postgres": "PostgreSQL",
    "figma": "Figma",
    "excel": "Excel",
    "salesforce": "Salesforce",
    "machine learning": "Machine learning",
    "communication": "Communication",
    "leadership": "Leadership",
    "negotiation": "Negotiation",
}
TECH = {"Python", "Java", "Kotlin", "Go", "Rust", "TypeScript", "JavaScript", "React", "SQL"}
TECH |= {"Kafka", "Spark", "AWS", "GCP", "Azure", "Kubernetes", "Docker", "Terraform"}
TECH |= {"PostgreSQL", "Figma", "Salesforce"}

SENIORITY = [
    ("intern", ("intern", "praktikum", "trainee")),
    ("principal", ("principal", "staff", "distinguished")),
    ("lead", ("lead", "head of", "manager", "director")),
    ("senior", ("senior", "sr.", "sr ")),
    ("junior", ("junior", "jr.", "graduate", "entry")),
    ("mid", ("mid-level", "mid level", "intermediate")),
]
ROLE_FAMILY = [
    ("data", ("data", "analyst", "machine learning", "scientist")),
    ("design", ("design", "ux", "ui ")),
    ("product", ("product manager", "product owner")),
    ("marketing", ("marketing", "seo", "content")),
    ("sales", ("sales", "account executive", "business development")),
    ("support", ("support", "customer success", "help desk")),
    ("finance", ("finance", "accountant", "controller")),
    ("people", ("recruit", "hr ", "people partner", "talent")),
    ("operations", ("operations", "logistics", "warehouse")),
    ("engineering", ("engineer", "developer", " dev ", "devops", "sre", "programmer")),
]
CURRENCIES = {"€": "EUR", "eur": "EUR", "$": "USD", "usd": "USD", "£": "GBP", "gbp": "GBP"}
CURRENCIES |= {"chf": "CHF", "sek": "SEK", "¥": "JPY", "jpy": "JPY", "inr": "INR", "₹": "INR"}
CURRENCIES |= {"pln": "PLN", "cad": "CAD", "sgd": "SGD", "nok": "NOK"}

_CURRENCY = r"[€$£¥₹]|EUR|USD|GBP|CHF|SEK|NOK|PLN|CAD|SGD|JPY|INR"
# 80, 80k, 80.5k, 210,000, 28.000, 130'000, 1 400
_AMOUNT = r"(\d{1,3}(?:[.,' ]\d{3})+|\d+(?:[.,]\d+)?)\s*([kK])?"
_SALARY = re.compile(
    rf"(?P<cur1>{_CURRENCY})?\s*{_AMOUNT}\s*(?:-|\u2013|to)\s*(?P<cur2>{_CURRENCY})?\s*{_AMOUNT}"
    rf"\s*(?P<cur3>{_CURRENCY})?"
    r"(?:[^\n]{0,20}?(?P<period>hour|day|month|year|annum|monat|mois|anno))?",
    re.IGNORECASE,
)
_YEARS = re.compile(r"(\d{1,2})\s*\+?\s*(?:years|yrs|jahre)", re.IGNORECASE)


def _first(rules: list[tuple[str, tuple[str, ...]]], text: str, default: str) -> str:
    for value, words in rules:
        if any(word in text for word in words):
            return value
    return default


def _amount(number: str, thousands: str | None) -> float:
    if re.fullmatch(r"\d{1,3}(?:[.,' ]\d{3})+", number):
        return float(re.sub(r"[.,' ]", "", number))
    value = float(number.replace(",", "."))
    return value * 1000 if thousands else value


def _salary(text: str) -> dict[str, Any] | None:
    match = _SALARY.search(text)
    if not match:
        return None
    symbol = match.group("cur1") or match.group("cur2") or match.group("cur3")
    if symbol is None:
        return None
    low = _amount(match.group(2), match.group(3))
    high = _amount(match.group(5), match.group(6) or match.group(3))
    if match.group(6) and not match.group(3) and low < 1000 <= high:
        low *= 1000  # "80-95k"
    word = (match.group("period") or "").lower()
    periods = {"annum": "year", "anno": "year", "monat": "month", "mois": "month"}
    period = periods.get(word, word) or ("hour" if high < 500 else "year")
    return {
        "min": min(low, high),
        "max": max(low, high),
        "currency": CURRENCIES.get(symbol.lower(), symbol.upper()),
        "period": period,
    }


def derive_enrichment(text: str) -> dict[str, Any]:
    """An Enrichment (as JSON data) for the prompt text, which starts with 'Title: ...'."""
    title = text.split("\n", 1)[0].removeprefix("Title:").strip()
    lower = f" {text.lower()} "
    title_lower = f" {title.lower()} "
    skills = list(dict.fromkeys(name for key, name in SKILLS.items() if key in lower))
    years = _YEARS.search(text)
    if "remote" in lower and "hybrid" not in lower:
        remote = "remote"
    elif "hybrid" in lower:
        remote = "hybrid"
    elif "on-site" in lower or "onsite" in lower or "in office" in lower:
        remote = "onsite"
    else:
        remote = "unknown"
    description = text.split("Description:", 1)[-1].strip()
    first_sentence = re.split(r"(?<=[.!?])\s", description, maxsplit=1)[0][:200]
    requirements = [
        line.strip(" -•*\t")[:150]
        for line in description.splitlines()
        if line.strip().startswith(("-", "•", "*")) and line.strip(" -•*\t")
    ][:5]
    return {
        # as a model would: short, not the whole of a long title
        "summary": f"{title[:100]}: {first_sentence}".strip(),
        "seniority": _first(SENIORITY, title_lower, "unknown"),
        "role_family": _first(ROLE_FAMILY, title_lower, _first(ROLE_FAMILY, lower, "other")),
        "skills": skills,
        "tech_stack": [s for s in skills if s in TECH],
        "years_experience": int(years.group(1)) if years and int(years.group(1)) <= 50 else None,
        "remote_policy": remote,
        "salary": _salary(text),
        "key_requirements": requirements,
    }
