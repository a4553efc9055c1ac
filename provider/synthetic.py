"""Seeded synthetic data for the demo nodes: Shandong enterprises with Chinese names and addresses, their tax
filings and social-insurance contributions. Deterministic for a seed; nothing is downloaded."""

from __future__ import annotations

import numpy as np
import pandas as pd

CITIES = ("济南市", "青岛市", "烟台市", "潍坊市", "临沂市", "淄博市", "济宁市", "泰安市", "威海市", "日照市")
DISTRICTS = ("历下区", "市南区", "芝罘区", "奎文区", "兰山区", "张店区", "任城区", "泰山区", "环翠区", "东港区")
STREETS = ("经十路", "泉城路", "香港中路", "南大街", "胜利街", "人民路", "解放路", "和平路", "建设路", "工业大道")
BRANDS = ("鲁信", "齐鲁", "泰山", "黄河", "海岱", "蓬莱", "琅琊", "孔孟", "泉城", "半岛", "沂蒙", "东岳")
TRADES = {"制造业": "机械制造", "批发和零售业": "商贸", "交通运输业": "物流", "信息技术服务业": "科技",
          "住宿和餐饮业": "餐饮管理", "建筑业": "建设工程"}
RATINGS = ("A", "B", "C", "D", "M")


def enterprises(count: int, seed: int = 2026) -> pd.DataFrame:
    """Return ``count`` enterprises: credit code, name, address, industry, registered capital (10k CNY)."""
    rng = np.random.default_rng(seed)
    industries = list(TRADES)
    industry = rng.choice(industries, size=count, p=[0.3, 0.25, 0.15, 0.1, 0.1, 0.1])
    names = [f"山东{rng.choice(BRANDS)}{TRADES[i]}有限公司" for i in industry]
    addresses = [f"山东省{CITIES[c]}{DISTRICTS[c]}{rng.choice(STREETS)}{rng.integers(1, 999)}号"
                 for c in rng.integers(0, len(CITIES), size=count)]
    return pd.DataFrame({
        "uscc": [f"91370{n:013d}" for n in range(100_000, 100_000 + count)],
        "name_zh": [f"{name}（{k % 97}）" for k, name in enumerate(names)],
        "address_zh": addresses, "industry": industry,
        "registered_capital": rng.lognormal(5.5, 1.1, size=count).round(1),
    })


def tax_filings(firms: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """Return a year's VAT and income tax (10k CNY), months filed late and the tax credit rating per firm."""
    rng = np.random.default_rng(seed)
    size = firms["registered_capital"].to_numpy()
    vat = (size * rng.uniform(0.05, 0.4, len(firms))).round(2)
    return pd.DataFrame({"uscc": firms["uscc"], "vat_paid": vat,
                         "cit_paid": (vat * rng.uniform(0.1, 0.6, len(firms))).round(2),
                         "months_late": rng.poisson(0.6, len(firms)).astype(float),
                         "credit_rating": rng.choice(RATINGS, size=len(firms), p=[0.35, 0.35, 0.15, 0.05, 0.1])})


def insurance(firms: pd.DataFrame, seed: int = 11) -> pd.DataFrame:
    """Return insured employees and the yearly contribution base (10k CNY) per firm."""
    rng = np.random.default_rng(seed)
    employees = np.maximum(1, (firms["registered_capital"].to_numpy() / 20 * rng.lognormal(0, 0.5, len(firms))))
    employees = employees.round()
    return pd.DataFrame({"uscc": firms["uscc"], "insured_employees": employees,
                         "contribution_base": (employees * rng.uniform(3.5, 9.0, len(firms))).round(2)})


RISK_FEATURES = ("registered_capital", "insured_employees", "vat_paid", "months_late")


def risk_sample(city: int, count: int, seed: int = 31) -> pd.DataFrame:
    """Return one city's enterprise operating-risk sample: the features a city data bureau holds and whether the
    firm was put on the abnormal-operation list within a year (``abnormal``). Cities differ in size and base rate,
    so a federation over them is not identically distributed."""
    rng = np.random.default_rng(seed + 101 * city)
    firms = enterprises(count, seed=seed + city)
    capital = firms["registered_capital"].to_numpy() * (1.0 + 0.3 * city)
    employees = np.maximum(1, (capital / 20 * rng.lognormal(0, 0.5, count)).round())
    vat = (capital * rng.uniform(0.05, 0.4, count)).round(2)
    late = rng.poisson(0.4 + 0.3 * city, count).astype(float)
    logit = 0.6 + 0.3 * city + 1.1 * late - 0.45 * np.log1p(vat) - 0.3 * np.log1p(employees)
    abnormal = (rng.random(count) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"uscc": [f"91370{city}{n:012d}" for n in range(count)], "registered_capital": capital.round(1),
                         "insured_employees": employees, "vat_paid": vat, "months_late": late, "abnormal": abnormal})
