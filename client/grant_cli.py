"""`pdx grant …`, `pdx decide`, `pdx job submit|statistics|result`: the authorization workflow from the command
line."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from client.commands import call, client_for, key_option, show, token_option, url_option
from common.vocab import Action, ComputationKind, GrantKind

KINDS = [kind.value for kind in GrantKind]  # values: click matches an enum choice by its name
COMPUTATION_KINDS = [kind.value for kind in ComputationKind]


@click.group("grant")
def grant_group() -> None:
    """Authorizations: 综合授权 comprehensive, 分领域授权 per-domain, 依场景授权 per-scenario."""


def _terms(kinds, days, max_jobs, max_rows, min_group, max_cells, epsilon, price) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    return {"computation_kinds": list(kinds), "valid_from": now.isoformat(),
            "valid_until": (now + timedelta(days=days)).isoformat(), "max_jobs": max_jobs, "max_rows": max_rows,
            "min_group_size": min_group, "max_result_cells": max_cells, "epsilon": epsilon,
            "price": {"amount": price, "currency": "CNY"}}


@grant_group.command("request")
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option("--provider", "providers", multiple=True, help="comprehensive / per-domain: the providers")
@click.option("--domain", default=None, help="per-domain: the domain code")
@click.option("--max-grade", type=click.IntRange(1, 4), default=None, help="comprehensive / per-domain")
@click.option("--asset", "assets", multiple=True, help="per-scenario: the assets")
@click.option("--scenario", default=None, help="per-scenario: the scenario's name")
@click.option("--purpose", default=None, help="per-scenario: the stated purpose")
@click.option("--computation", "kinds", multiple=True, type=click.Choice(COMPUTATION_KINDS), required=True)
@click.option("--days", type=click.IntRange(1, 3650), default=90, show_default=True, help="validity from now")
@click.option("--max-jobs", type=click.IntRange(1), default=10, show_default=True)
@click.option("--max-rows", type=click.IntRange(1), default=1_000_000, show_default=True)
@click.option("--min-group-size", type=click.IntRange(1), default=10, show_default=True)
@click.option("--max-result-cells", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--epsilon", type=click.FloatRange(min=0, min_open=True), default=None, help="DP budget ε")
@click.option("--price", default="0", show_default=True, help="price in CNY")
@url_option
@token_option
@key_option
def grant_request(kind, providers, domain, max_grade, assets, scenario, purpose, kinds, days, max_jobs, max_rows,
                  min_group_size, max_result_cells, epsilon, price, url, token, key_path) -> None:
    """Request an authorization (consumers)."""
    body = {"kind": kind, "providers": list(providers), "domain": domain, "max_grade": max_grade,
            "assets": list(assets), "scenario": scenario, "purpose": purpose,
            "terms": _terms(kinds, days, max_jobs, max_rows, min_group_size, max_result_cells, epsilon, price)}
    show(call(client_for(url, token, key_path).post, "/grants", body))


@grant_group.command("act")
@click.argument("grant_id")
@click.argument("action", type=click.Choice(["approve", "counter", "reject", "accept", "decline", "withdraw",
                                             "co-approve", "regulator-reject", "revoke", "terminate", "suspend",
                                             "reinstate"]))
@click.option("--reason", default=None)
@click.option("--terms", "terms_file", type=click.File("r", encoding="utf-8"), default=None,
              help="counter: a JSON file with the narrowed terms")
@click.option("--core-exception", is_flag=True, help="co-approve: allow grade-4 assets for this scenario")
@click.option("--dp-exception", is_flag=True,
              help="co-approve: allow statistics without differential privacy on grade ≥ 3 (needs --reason)")
@url_option
@token_option
@key_option
def grant_act(grant_id, action, reason, terms_file, core_exception, dp_exception, url, token, key_path) -> None:
    """Take a workflow action on a grant (who may do what: docs/authorization.md)."""
    body: dict[str, Any] = {"reason": reason, "core_exception": core_exception}
    if dp_exception:
        body["dp_exception"] = True
    if terms_file is not None:
        body["terms"] = json.load(terms_file)
    show(call(client_for(url, token, key_path).post, f"/grants/{grant_id}/{action}", body))


@grant_group.command("list")
@click.option("--status", default=None)
@click.option("--kind", type=click.Choice(KINDS), default=None)
@url_option
@token_option
def grant_list(status, kind, url, token) -> None:
    """List the grants you take part in."""
    page = call(client_for(url, token).get, "/grants", status=status, kind=kind, per_page=100)
    for grant in page["items"]:
        usage = grant["usage"]
        click.echo(f"{grant['id']}  {grant['kind_zh']}  {grant['status']:<17} jobs {usage['jobs_used']}/"
                   f"{grant['terms']['max_jobs']}  next: {', '.join(grant['allowed_actions']) or '-'}")
    click.echo(f"{len(page['items'])} of {page['total']}")


@grant_group.command("show")
@click.argument("grant_id")
@click.option("--odrl", is_flag=True, help="print the ODRL 2.2 Agreement instead")
@url_option
@token_option
def grant_show(grant_id, odrl, url, token) -> None:
    """Show a grant (or its ODRL terms)."""
    show(call(client_for(url, token).get, f"/grants/{grant_id}/odrl" if odrl else f"/grants/{grant_id}"))


def _job_body(grant, assets, computation, params, rows, epsilon, group_size, result_cells) -> dict[str, Any]:
    return {"grant": grant, "assets": list(assets), "computation_kind": computation,
            "params": json.loads(params) if params else {}, "rows": rows, "epsilon": epsilon,
            "group_size": group_size, "result_cells": result_cells}


job_options = [
    click.option("--grant", default=None, help="the grant (not needed to ask about downloading open data)"),
    click.option("--asset", "assets", multiple=True, required=True),
    click.option("--computation", type=click.Choice(COMPUTATION_KINDS), required=True),
    click.option("--params", default=None, help="JSON object of operation parameters"),
    click.option("--rows", type=click.IntRange(0), default=0), click.option("--epsilon", type=float, default=0.0),
    click.option("--group-size", type=click.IntRange(0), default=10),
    click.option("--result-cells", type=click.IntRange(0), default=1),
]


def _with_job_options(command):
    for option in reversed(job_options):
        command = option(command)
    return command


@click.command("decide")
@_with_job_options
@click.option("--download", is_flag=True, help="ask about downloading raw rows instead of computing")
@url_option
@token_option
def decide(grant, assets, computation, params, rows, epsilon, group_size, result_cells, download, url,
           token) -> None:
    """Ask, without running anything, whether a job (or a download) would be allowed and why."""
    body = _job_body(grant, assets, computation, params, rows, epsilon, group_size, result_cells)
    body["action"] = Action.DOWNLOAD if download else Action.COMPUTE
    decision = call(client_for(url, token).post, "/decisions", body)
    click.echo("ALLOW" if decision["allow"] else "DENY")
    for reason in decision["reasons"]:
        click.echo(f"  {reason['effect']:<7}{reason['code']}: {reason['message']}")
    if decision["obligations"]:
        click.echo(f"  obligations: {json.dumps(decision['obligations'], ensure_ascii=False)}")


@click.group("job")
def job_group() -> None:
    """Jobs admitted under a grant."""


@job_group.command("submit")
@_with_job_options
@click.option("--context", "context_file", type=click.File("rb"), default=None,
              help="he-*: a file holding your public CKKS context (the SDK makes it and keeps the secret key)")
@url_option
@token_option
@key_option
def job_submit(grant, assets, computation, params, rows, epsilon, group_size, result_cells, context_file, url,
               token, key_path: Path | None) -> None:
    """Submit a job: the exchange decides, consumes quota and tickets each provider."""
    if grant is None:
        raise click.UsageError("a job runs under a grant: give --grant")
    body = _job_body(grant, assets, computation, params, rows, epsilon, group_size, result_cells)
    if context_file is not None:
        body["context"] = base64.b64encode(context_file.read()).decode()
    show(call(client_for(url, token, key_path).post, "/jobs", body))


def register(main: click.Group) -> None:
    """Add the authorization commands to ``pdx``."""
    for command in (grant_group, decide, job_group):
        main.add_command(command)


@grant_group.command("expire-due")
def grant_expire_due() -> None:
    """Record the expiry of every grant whose window has closed (server side; run it from cron)."""
    from app import create_app
    from authorization.workflow import expire_due
    from common.db import utcnow
    from ledger.log import LedgerError
    from ledger.service import unit_of_work

    try:
        with create_app().app_context(), unit_of_work(system=True) as uow:
            expired = expire_due(uow, utcnow())
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"expired {len(expired)} grant(s){': ' + ', '.join(expired) if expired else ''}")


@job_group.command("statistics")
@click.option("--grant", required=True)
@click.option("--asset", "assets", multiple=True, required=True)
@click.option("--column", "columns", multiple=True, help="numeric column to summarise (none: counts only)")
@click.option("--group-by", default=None, help="categorical column to group by")
@click.option("--group", "groups", multiple=True, help="the group labels to report (with --group-by)")
@click.option("--min-group-size", type=click.IntRange(1), default=10, show_default=True)
@click.option("--rows", type=click.IntRange(0), required=True, help="rows the job will process (quota)")
@click.option("--epsilon", type=float, default=0.0, help="ε to spend under a grant with a privacy budget")
@click.option("--bound", "bounds", multiple=True, help="COLUMN=LOW:HIGH clipping bounds (needed with --epsilon)")
@click.option("--store", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="where to keep the job's key (default: $PDX_HOME/jobs or ~/.pdx/jobs)")
@url_option
@token_option
@key_option
def job_statistics(grant, assets, columns, group_by, groups, min_group_size, rows, epsilon, bounds, store, url, token,
                   key_path) -> None:
    """Run homomorphic statistics with a fresh key pair, kept in the local job store so that the result can be
    fetched again (`pdx job result`); show progress, print the result."""
    from client.http import ApiError
    from client.sdk import Consumer, JobFailed, JobPending
    from privacy.aggregation import BadPlan, GroupBy, StatisticsPlan

    try:
        parsed = {name: (float(low), float(high)) for name, _, span in (b.partition("=") for b in bounds)
                  for low, _, high in [span.partition(":")]}
        plan = StatisticsPlan(columns=columns, min_group_size=min_group_size,
                              group_by=GroupBy(group_by, groups) if group_by else None)
    except (ValueError, BadPlan) as exc:
        raise click.UsageError(str(exc)) from exc
    consumer = Consumer(url, token, client_for(url, token, key_path).signing_key, store=store)
    spinner = "|/-\\"

    def progress(status: str, waited: float) -> None:
        click.echo(f"\r{spinner[int(waited * 2) % 4]} job {status} … {waited:5.1f} s", nl=False, err=True)

    try:
        result = consumer.statistics(grant, assets, plan, rows=rows, epsilon=epsilon, bounds=parsed or None,
                                     progress=progress)
    except JobPending as exc:
        click.echo("", err=True)
        raise click.ClickException(str(exc)) from exc
    except JobFailed as exc:
        click.echo("", err=True)
        raise click.ClickException(f"job failed: {exc}") from exc
    except ApiError as exc:
        click.echo("", err=True)
        raise click.ClickException(str(exc)) from exc
    click.echo("", err=True)
    _print_statistics(result)


def _print_statistics(result) -> None:
    summary = f"job {result.job_id}: {result.count} rows"
    if result.intervals is not None:
        count = result.intervals.loc["count"]
        summary += (f" (95 % interval {count['low']:.0f} to {count['high']:.0f}; differentially private at "
                    f"ε={result.noise['epsilon'].sum():g}: every figure below is noised)")
    click.echo(summary)
    if not result.columns.empty:
        click.echo(result.columns.to_string())
    for table in (result.histogram, result.groups):
        if table is not None:
            click.echo(table.to_string())
    if result.intervals is not None:
        click.echo("\nconfidence intervals (coverage; at_least: a lower bound on it):")
        click.echo(result.intervals.to_string())
        click.echo("\nnoise (Laplace, calibrated by OpenDP to each statistic's sensitivity and share of ε):")
        click.echo(result.noise.to_string())


def _result_json(job_id: str, result) -> dict[str, Any]:
    if hasattr(result, "statistics"):
        return {"job_id": job_id, "computation_kind": ComputationKind.HE_STATISTICS, "count": result.count,
                "columns": json.loads(result.columns.to_json(orient="index")),
                "histogram": None if result.histogram is None else json.loads(result.histogram.to_json(
                    orient="records")),
                "groups": None if result.groups is None else json.loads(result.groups.to_json(orient="index")),
                "intervals": None if result.intervals is None else json.loads(result.intervals.to_json(
                    orient="index")),
                "noise": None if result.noise is None else json.loads(result.noise.to_json(orient="index"))}
    return {"job_id": job_id, "computation_kind": ComputationKind.HE_SCORING,
            "scores": json.loads(result["score"].to_json(orient="index"))}


@job_group.command("result")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("--store", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="the job store the SDK wrote (default: $PDX_HOME/jobs or ~/.pdx/jobs)")
@url_option
@token_option
def job_result(job_id, as_json, store, url, token) -> None:
    """Fetch a job's result and decrypt it with the key the SDK stored when it submitted the job."""
    from client.http import ApiError
    from client.jobstore import JobNotStored
    from client.sdk import Consumer, JobFailed
    from privacy.he import HEError

    try:
        result = Consumer(url, token, store=store).result(job_id)
    except (JobNotStored, JobFailed, ApiError, HEError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        show(_result_json(job_id, result))
    elif hasattr(result, "statistics"):
        _print_statistics(result)
    else:
        click.echo(f"job {job_id}: {len(result)} scores\n{result.to_string()}")
