"""Controlled vocabularies of the catalog: grades, computation kinds, field types, frequencies, seed domains."""

from __future__ import annotations

from dataclasses import dataclass

from common.vocab import PRIVACY_PRESERVING_KINDS, ComputationKind

__all__ = ["COMPUTATION_KINDS", "PRIVACY_PRESERVING_KINDS", "GRADES", "SEED_DOMAINS"]


@dataclass(frozen=True)
class Grade:
    level: int
    name_zh: str
    name_en: str
    meaning: str


# 分类分级: the grading every asset carries. docs/catalog.md explains each.
GRADES = {
    1: Grade(1, "开放", "open", "may be downloaded; no personal information"),
    2: Grade(2, "受限", "restricted", "computations only; raw rows never leave the provider node"),
    3: Grade(3, "敏感", "sensitive", "homomorphic or federated computation only, minimum group size, "
                                   "regulator co-approval"),
    4: Grade(4, "核心", "core", "no external computation unless the regulator grants an exception for a scenario"),
}

COMPUTATION_KINDS = tuple(ComputationKind)  # spelled once, in common.vocab

FIELD_TYPES = ("string", "integer", "number", "boolean", "date", "datetime", "category", "identifier")

# Update frequency -> EU Publications Office frequency authority code (for dct:accrualPeriodicity).
FREQUENCIES = {
    "continuous": "CONT",
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "annual": "ANNUAL",
    "irregular": "IRREG",
    "never": "NEVER",
}

PRICE_MODELS = ("free", "per-job", "per-row", "subscription")
CURRENCIES = ("CNY",)


@dataclass(frozen=True)
class SeedDomain:
    code: str
    name_zh: str
    name_en: str
    eu_theme: str  # EU data-theme authority code, for dcat:theme


# The domains every exchange starts with; operators add more.
SEED_DOMAINS = (
    SeedDomain("transport", "交通运输", "Transport", "TRAN"),
    SeedDomain("health", "医疗卫生", "Health", "HEAL"),
    SeedDomain("market-regulation", "市场监管", "Market regulation", "ECON"),
    SeedDomain("natural-resources", "自然资源", "Natural resources", "ENVI"),
    SeedDomain("ecology", "生态环境", "Ecology and environment", "ENVI"),
    SeedDomain("social-security", "社会保障", "Social security", "SOCI"),
    SeedDomain("tax", "税务", "Tax", "ECON"),
    SeedDomain("education", "教育", "Education", "EDUC"),
    SeedDomain("public-safety", "公共安全", "Public safety", "JUST"),
    SeedDomain("agriculture", "农业农村", "Agriculture", "AGRI"),
)
EU_THEMES = ("AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST", "REGI", "SOCI", "TECH", "TRAN")
