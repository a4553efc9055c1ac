"""A realistic demo exchange: Shandong's public bodies as providers, a bank and a university as consumers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authorization import workflow
from authorization.schemas import TermsSchema
from catalog import services as catalog
from common.db import utcnow
from common.vocab import ComputationKind, GrantKind, ParticipantStatus, Role
from exchange import bootstrap
from participants import services as participants
from participants.rules import Principal

NODE_PORTS = {"market": 8701, "tax": 8702, "hrss": 8703, "transport": 8704, "ecology": 8705, "jinan": 8706,
              "qingdao": 8707, "yantai": 8708}
CITIES = ("jinan", "qingdao", "yantai")  # city data bureaus holding the same fields for their own firms


@dataclass(frozen=True)
class DemoParticipant:
    key: str
    name_zh: str
    name_en: str
    roles: tuple[str, ...]


PARTICIPANTS = (
    DemoParticipant("regulator", "山东省大数据局", "Shandong Big Data Bureau", (Role.REGULATOR,)),
    DemoParticipant("market", "山东省市场监督管理局", "Shandong Administration for Market Regulation", (Role.PROVIDER,)),
    DemoParticipant("tax", "国家税务总局山东省税务局", "Shandong Provincial Tax Service", (Role.PROVIDER,)),
    DemoParticipant("hrss", "山东省人力资源和社会保障厅", "Shandong Department of Human Resources and Social Security",
                    (Role.PROVIDER, Role.CONSUMER)),
    DemoParticipant("transport", "山东省交通运输厅", "Shandong Department of Transport", (Role.PROVIDER,)),
    DemoParticipant("ecology", "山东省生态环境厅", "Shandong Department of Ecology and Environment", (Role.PROVIDER,)),
    DemoParticipant("jinan", "济南市大数据局", "Jinan Big Data Bureau", (Role.PROVIDER,)),
    DemoParticipant("qingdao", "青岛市大数据局", "Qingdao Big Data Bureau", (Role.PROVIDER,)),
    DemoParticipant("yantai", "烟台市大数据局", "Yantai Big Data Bureau", (Role.PROVIDER,)),
    DemoParticipant("bank", "齐鲁普惠银行（示例）", "Qilu Inclusive Bank (demo)", (Role.CONSUMER,)),
    DemoParticipant("university", "山东数据科学研究院（示例）", "Shandong Institute of Data Science (demo)", (Role.CONSUMER,)),
)


def _field(name, type_, description, unit=None, personal=False):
    # the demo providers open their category fields to filters and groups, never an identifier or a measure
    return {"name": name, "type": type_, "unit": unit, "description": description, "personal": personal,
            "filterable": type_ == "category"}


def _price(model, amount="0"):
    return {"model": model, "amount": amount, "currency": "CNY", "unit_rows": 10_000 if model == "per-row" else None}


ASSETS = (
    ("market", {
        "title_zh": "企业登记注册信息", "title_en": "Enterprise registration records",
        "description_zh": "全省市场主体登记信息：统一社会信用代码、成立日期、注册资本、行业、登记状态。",
        "description_en": "Registered market entities of the province: unified social credit code, founding date, "
                          "registered capital, industry and registration status.",
        "domain": "market-regulation", "keywords": ["企业", "登记", "enterprise", "registry", "SME"],
        "fields": [_field("uscc", "identifier", "unified social credit code 统一社会信用代码"),
                   _field("founded_on", "date", "date of establishment"),
                   _field("registered_capital", "number", "registered capital", "CNY 10k"),
                   _field("industry", "category", "GB/T 4754 industry section"),
                   _field("status", "category", "registration status")],
        "grade": 2, "computation_kinds": [ComputationKind.AGGREGATE, ComputationKind.HE_STATISTICS, ComputationKind.HE_SCORING, ComputationKind.FEDERATED_LEARNING],
        "update_frequency": "daily", "license": "pdx-authorized-use-1.0", "price": _price("per-job", "200.00"),
        "authoritative_for": ["DE.MR.USCC", "DE.MR.REG_CAPITAL"]}),
    ("tax", {
        "title_zh": "企业纳税信用与申报汇总", "title_en": "Enterprise tax filings and tax credit rating",
        "description_zh": "按企业、按月的增值税与企业所得税申报汇总及纳税信用等级。",
        "description_en": "Monthly VAT and corporate income tax filing totals per enterprise, with the tax credit "
                          "rating (A–D, M).",
        "domain": "tax", "keywords": ["纳税", "信用", "tax", "VAT", "credit rating"],
        "fields": [_field("uscc", "identifier", "unified social credit code"),
                   _field("vat_paid", "number", "VAT paid in the year", "CNY 10k"),
                   _field("cit_paid", "number", "corporate income tax paid in the year", "CNY 10k"),
                   _field("months_late", "integer", "months filed late in the year", "months"),
                   _field("credit_rating", "category", "tax credit rating")],
        "grade": 3, "computation_kinds": [ComputationKind.HE_STATISTICS, ComputationKind.HE_SCORING, ComputationKind.FEDERATED_LEARNING],
        "update_frequency": "monthly", "license": "pdx-authorized-use-1.0", "price": _price("per-row", "5.00"),
        "authoritative_for": ["DE.TAX.VAT_PAID", "DE.TAX.CREDIT_RATING"]}),
    ("hrss", {
        "title_zh": "企业社会保险缴纳情况", "title_en": "Enterprise social insurance contributions",
        "description_zh": "按企业、按月的参保人数与社会保险缴费基数汇总。",
        "description_en": "Monthly number of insured employees and total contribution base per enterprise.",
        "domain": "social-security", "keywords": ["社保", "参保", "social insurance", "employment"],
        "fields": [_field("uscc", "identifier", "unified social credit code"),
                   _field("insured_employees", "integer", "insured employees", "persons"),
                   _field("contribution_base", "number", "yearly contribution base", "CNY 10k")],
        "grade": 3, "computation_kinds": [ComputationKind.HE_STATISTICS, ComputationKind.HE_SCORING, ComputationKind.FEDERATED_LEARNING],
        "update_frequency": "monthly", "license": "pdx-authorized-use-1.0", "price": _price("per-job", "300.00"),
        "authoritative_for": ["DE.HRSS.INSURED_EMPLOYEES"]}),
    ("hrss", {
        "title_zh": "个人参保缴费明细", "title_en": "Individual social insurance contribution records",
        "description_zh": "参保人员个人缴费明细，含身份证号与缴费基数，属核心数据。",
        "description_en": "Per-person contribution records with national ID numbers and contribution base; "
                          "core data.",
        "domain": "social-security", "keywords": ["个人", "社保", "individual", "contribution"],
        "fields": [_field("person_id", "identifier", "national ID number 身份证号", personal=True),
                   _field("uscc", "identifier", "employer credit code"),
                   _field("month", "date", "contribution month"),
                   _field("base", "number", "contribution base", "CNY", personal=True)],
        "grade": 4, "computation_kinds": [ComputationKind.HE_STATISTICS, ComputationKind.FEDERATED_LEARNING],
        "update_frequency": "monthly", "license": "pdx-authorized-use-1.0", "price": _price("per-job", "800.00"),
        "authoritative_for": ["DE.HRSS.PERSON_CONTRIBUTION"]}),
    ("transport", {
        "title_zh": "高速公路收费站断面流量", "title_en": "Expressway toll-station traffic counts",
        "description_zh": "全省高速公路收费站按小时、按车型的出入口流量统计。",
        "description_en": "Hourly entry and exit counts per toll station and vehicle class on the province's "
                          "expressways.",
        "domain": "transport", "keywords": ["高速", "流量", "traffic", "expressway", "toll"],
        "fields": [_field("station", "category", "toll station code"),
                   _field("hour", "datetime", "hour (UTC+8)"),
                   _field("vehicle_class", "category", "vehicle class 1–6"),
                   _field("entries", "integer", "vehicles entering", "vehicles"),
                   _field("exits", "integer", "vehicles leaving", "vehicles")],
        "grade": 1, "computation_kinds": [ComputationKind.DOWNLOAD, ComputationKind.AGGREGATE],
        "update_frequency": "daily", "license": "CC-BY-4.0", "price": _price("free"),
        "authoritative_for": ["DE.TRN.TOLL_FLOW"]}),
    ("transport", {
        "title_zh": "道路运输企业经营许可", "title_en": "Road transport operating licences",
        "description_zh": "道路货运与客运企业的经营许可证、车辆规模与许可有效期。",
        "description_en": "Operating licences of freight and passenger road transport enterprises, fleet size and "
                          "validity.",
        "domain": "transport", "keywords": ["运输", "许可", "licence", "logistics"],
        "fields": [_field("uscc", "identifier", "unified social credit code"),
                   _field("licence_no", "identifier", "licence number"),
                   _field("fleet_size", "integer", "vehicles", "vehicles"),
                   _field("valid_until", "date", "licence expiry")],
        "grade": 2, "computation_kinds": [ComputationKind.AGGREGATE, ComputationKind.HE_STATISTICS, ComputationKind.HE_SCORING],
        "update_frequency": "weekly", "license": "pdx-authorized-use-1.0", "price": _price("per-job", "100.00")}),
    ("ecology", {
        "title_zh": "空气质量自动监测小时数据", "title_en": "Hourly automatic air-quality monitoring",
        "description_zh": "国控与省控站点的PM2.5、PM10、O3、NO2小时浓度。",
        "description_en": "Hourly PM2.5, PM10, O3 and NO2 concentrations at national and provincial stations.",
        "domain": "ecology", "keywords": ["空气", "PM2.5", "air quality", "monitoring"],
        "fields": [_field("station", "category", "monitoring station"),
                   _field("hour", "datetime", "hour (UTC+8)"),
                   _field("pm25", "number", "PM2.5", "µg/m³"), _field("pm10", "number", "PM10", "µg/m³"),
                   _field("o3", "number", "ozone", "µg/m³"), _field("no2", "number", "nitrogen dioxide", "µg/m³")],
        "grade": 1, "computation_kinds": [ComputationKind.DOWNLOAD, ComputationKind.AGGREGATE],
        "update_frequency": "continuous", "license": "CC-BY-4.0", "price": _price("free"),
        "authoritative_for": ["DE.ECO.AQ_HOURLY"]}),
    ("ecology", {
        "title_zh": "重点排污单位排放许可", "title_en": "Emission permits of key polluting enterprises",
        "description_zh": "重点排污单位的排污许可证、许可排放量与年度执行报告。",
        "description_en": "Emission permits, permitted loads and annual compliance reports of key polluters.",
        "domain": "ecology", "keywords": ["排污", "许可", "emission", "permit", "ESG"],
        "fields": [_field("uscc", "identifier", "unified social credit code"),
                   _field("pollutant", "category", "pollutant"),
                   _field("permitted_tonnes", "number", "permitted annual load", "t"),
                   _field("reported_tonnes", "number", "reported annual load", "t")],
        "grade": 2, "computation_kinds": [ComputationKind.AGGREGATE, ComputationKind.HE_STATISTICS],
        "update_frequency": "annual", "license": "pdx-authorized-use-1.0", "price": _price("per-job", "150.00")}),
)


CITY_NAMES = {"jinan": ("济南", "Jinan"), "qingdao": ("青岛", "Qingdao"), "yantai": ("烟台", "Yantai")}
ASSETS += tuple((city, {
    "title_zh": f"{zh}市企业经营风险样本", "title_en": f"{en} enterprise operating-risk sample",
    "description_zh": f"{zh}市企业的注册资本、参保人数、增值税、逾期申报月数，以及一年内是否被列入经营异常名录。",
    "description_en": f"{en} enterprises' registered capital, insured employees, VAT, months filed late, and "
                      f"whether the firm was put on the abnormal-operation list within a year.",
    "domain": "market-regulation", "keywords": ["经营异常", "风险", "operating risk", "early warning", en],
    "fields": [_field("uscc", "identifier", "unified social credit code"),
               _field("registered_capital", "number", "registered capital", "CNY 10k"),
               _field("insured_employees", "integer", "insured employees", "persons"),
               _field("vat_paid", "number", "VAT paid in the year", "CNY 10k"),
               _field("months_late", "integer", "months filed late", "months"),
               _field("abnormal", "integer", "listed as abnormal within a year (0/1)")],
    "grade": 2, "computation_kinds": [ComputationKind.FEDERATED_LEARNING], "update_frequency": "monthly",
    "license": "pdx-authorized-use-1.0", "price": _price("per-job", "100.00")}) for city, (zh, en) in CITY_NAMES.items())


@dataclass(frozen=True)
class DemoExchange:
    """What the seed created: per demo participant its token and signing key, and the published asset ids."""

    tokens: dict[str, str]
    participant_ids: dict[str, str]
    keys: dict[str, Ed25519PrivateKey]
    asset_ids: list[str]
    grant_id: str
    scoring_grant_id: str
    federated_grant_id: str


def seed(node_host: str = "127.0.0.1", first_node_port: int = 8701) -> DemoExchange:
    """Create the operator and the demo participants, each with its own key, and publish the demo catalog.

    Every step is a signed action recorded in the ledger, exactly as the same calls over the API would be.
    Runs inside an app context.
    """
    operator_key = Ed25519PrivateKey.generate()
    operator, operator_token, _ = bootstrap.bootstrap_operator(
        "山东公共数据授权运营有限公司（示例）", "Shandong Public Data Operations Co. (demo)", operator_key)
    op = bootstrap.principal_of(operator)
    tokens, ids, keys = {"operator": operator_token.secret}, {"operator": operator.id}, {"operator": operator_key}
    principals = {}
    for demo in PARTICIPANTS:
        body = {"name_zh": demo.name_zh, "name_en": demo.name_en, "roles": list(demo.roles), "contact_email": None}
        participant, issued = bootstrap.act(op, operator_key, "POST", "/api/v1/participants", body,
                                            lambda uow, body=body: participants.create_participant(
                                                uow, op, **body, now=utcnow()))
        reason = {"reason": "demo participant"}
        bootstrap.act(op, operator_key, "POST", f"/api/v1/participants/{participant.id}/admit", reason,
                      lambda uow, pid=participant.id: participants.change_status(uow, op, pid, "admit",
                                                                                 reason["reason"], now=utcnow()))
        principal = Principal(participant.id, frozenset(demo.roles), ParticipantStatus.ACTIVE, issued.row.id)
        keys[demo.key] = Ed25519PrivateKey.generate()
        bootstrap.register_key(principal, keys[demo.key], "demo", approver=(op, operator_key))
        tokens[demo.key], ids[demo.key], principals[demo.key] = issued.secret, participant.id, principal
    asset_ids = []
    for owner, values in ASSETS:
        principal, key = principals[owner], keys[owner]
        port = first_node_port + NODE_PORTS[owner] - NODE_PORTS["market"]
        body = {**values, "node_endpoint": f"http://{node_host}:{port}"}
        asset = bootstrap.act(principal, key, "POST", "/api/v1/assets", body,
                              lambda uow, p=principal, b=body: catalog.register_asset(uow.session, p, b, now=utcnow()))
        bootstrap.act(principal, key, "POST", f"/api/v1/assets/{asset.id}/publish", {},
                      lambda uow, p=principal, a=asset.id: catalog.change_lifecycle(uow, p, a, "publish", now=utcnow()))
        asset_ids.append(asset.id)
    grant_id, scoring_grant_id = _credit_scoring_grant(principals, keys, asset_ids)
    federated_grant_id = _risk_model_grant(principals, keys, asset_ids[-len(CITIES):])
    return DemoExchange(tokens=tokens, participant_ids=ids, keys=keys, asset_ids=asset_ids, grant_id=grant_id,
                        scoring_grant_id=scoring_grant_id, federated_grant_id=federated_grant_id)


def _risk_model_grant(principals: dict[str, Principal], keys: dict[str, Ed25519PrivateKey],
                      city_assets: list[str]) -> str:
    """The institute's per-scenario grant (依场景授权) to train an operating-risk early-warning model by federated
    learning (联邦学习) over the three cities' samples; each city bureau approves (grade 2: no co-approval)."""
    now = datetime.now(timezone.utc)
    terms = {"computation_kinds": [ComputationKind.FEDERATED_LEARNING], "valid_from": now.isoformat(),
             "valid_until": (now + timedelta(days=90)).isoformat(), "max_jobs": 10, "max_rows": 1_000_000,
             "min_group_size": 50, "max_result_cells": 100, "epsilon": None,
             "price": {"amount": "300.00", "currency": "CNY"}}
    body = {"kind": GrantKind.SCENARIO, "scenario": "企业经营风险预警 enterprise operating-risk early warning",
            "purpose": "train a logistic early-warning model on the three cities' samples without any row leaving "
                       "its bureau, and share the value by each city's contribution",
            "assets": city_assets, "terms": terms}
    institute = principals["university"]
    loaded = {**body, "providers": [], "domain": None, "max_grade": None, "terms": TermsSchema().load(terms)}
    grant = bootstrap.act(institute, keys["university"], "POST", "/api/v1/grants", body,
                          lambda uow: workflow.request_grant(uow, institute, loaded, now))
    for city in CITIES:
        bootstrap.act(principals[city], keys[city], "POST", f"/api/v1/grants/{grant.id}/approve", {},
                      lambda uow, p=principals[city]: workflow.act(uow, p, grant.id, "approve", now=now))
    return grant.id


def _credit_scoring_grant(principals: dict[str, Principal], keys: dict[str, Ed25519PrivateKey],
                          asset_ids: list[str]) -> tuple[str, str]:
    """The bank's per-scenario grants (依场景授权) for SME credit scoring over tax and social-insurance data:
    statistics (minimum group 20) and scoring of named applicants; both providers approve and the
    regulator co-approves (grade 3), recording for the statistics grant the no-DP exception that exact statistics
    on grade-3 data need. Returns the statistics and the scoring grant's ids."""
    tax_asset, hrss_asset = asset_ids[1], asset_ids[2]
    now = datetime.now(timezone.utc)
    purpose = ("score SME loan applicants of the bank's inclusive-finance programme from tax and social-insurance "
               "records, without the bank seeing any record")
    grants = []
    for kinds, min_group, cells in (([ComputationKind.HE_STATISTICS], 20, 200), ([ComputationKind.HE_SCORING], 1, 5000)):
        terms = {"computation_kinds": kinds, "valid_from": now.isoformat(),
                 "valid_until": (now + timedelta(days=180)).isoformat(), "max_jobs": 50, "max_rows": 5_000_000,
                 "min_group_size": min_group, "max_result_cells": cells, "epsilon": None,
                 "price": {"amount": "500.00", "currency": "CNY"}}
        body = {"kind": GrantKind.SCENARIO, "scenario": "中小企业信用评分 SME credit scoring", "purpose": purpose,
                "assets": [tax_asset, hrss_asset], "terms": terms}
        bank = principals["bank"]
        loaded = {**body, "providers": [], "domain": None, "max_grade": None, "terms": TermsSchema().load(terms)}
        grant = bootstrap.act(bank, keys["bank"], "POST", "/api/v1/grants", body,
                              lambda uow, b=bank, ld=loaded: workflow.request_grant(uow, b, ld, now))
        exception = {"dp_exception": True, "reason": "demo: exact SME statistics by industry and rating, minimum "
                                                     "group 20"} if kinds == [ComputationKind.HE_STATISTICS] else {}
        for party in ("tax", "hrss", "regulator"):
            action = "co-approve" if party == "regulator" else "approve"
            sent = exception if party == "regulator" else {}
            bootstrap.act(principals[party], keys[party], "POST", f"/api/v1/grants/{grant.id}/{action}", sent,
                          lambda uow, p=principals[party], a=action, g=grant.id, s=sent: workflow.act(
                              uow, p, g, a, now=now, reason=s.get("reason"), dp_exception=bool(s.get("dp_exception"))))
        grants.append(grant.id)
    return grants[0], grants[1]
