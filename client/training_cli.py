"""`pdx job train` and `pdx job plot`: federated training (联邦学习) from the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from client.commands import call, client_for, key_option, token_option, url_option


@click.command("train")
@click.option("--grant", required=True)
@click.option("--asset", "assets", multiple=True, required=True, help="one asset per provider node (repeat)")
@click.option("--feature", "features", multiple=True, required=True, help="feature column (repeat)")
@click.option("--label", required=True, help="the label column (0/1 for logistic, a number for linear)")
@click.option("--task", type=click.Choice(["logistic", "linear"]), default="logistic", show_default=True)
@click.option("--rounds", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--local-epochs", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="local epochs per round without differential privacy (with it: one gradient step)")
@click.option("--learning-rate", type=click.FloatRange(0, 100, min_open=True), default=0.5, show_default=True)
@click.option("--l2", type=click.FloatRange(0, 100), default=1e-3, show_default=True)
@click.option("--rows", type=click.IntRange(0), required=True, help="rows the job may use (quota)")
@click.option("--min-quorum", type=click.IntRange(2), default=None, help="providers a round needs (default: all)")
@click.option("--validation", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a CSV of your own rows with the features and the label, to score each round")
@click.option("--clip", type=click.FloatRange(0, min_open=True), default=None,
              help="differential privacy: the L2 bound of one row's gradient (with --noise-multiplier)")
@click.option("--noise-multiplier", type=click.FloatRange(0, min_open=True), default=None,
              help="differential privacy: the noise's σ on each round's sum, in units of --clip")
@click.option("--bound", "bounds", type=(str, float, float), multiple=True,
              help="FEATURE LOW HIGH: the feature's range, to standardize by (required with differential privacy)")
@click.option("--contribution", is_flag=True,
              help="measure each provider's contribution by leave-one-out (differentially private trainings only)")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="write the training curve to this PNG")
@url_option
@token_option
@key_option
def job_train(grant, assets, features, label, task, rounds, local_epochs, learning_rate, l2, rows, min_quorum,
              validation, clip, noise_multiplier, bounds, contribution, plot_path, url, token, key_path) -> None:
    """Train a linear or logistic model across the providers' nodes; the key stays here, a bar shows the rounds."""
    import pandas as pd

    from client.http import ApiError
    from client.sdk import Consumer, JobFailed
    from client.training import train
    from privacy.federated import FederatedError, TrainingConfig

    try:
        private = noise_multiplier is not None
        config = TrainingConfig(task=task, rounds=rounds, local_epochs=1 if private else local_epochs,
                                learning_rate=learning_rate, l2=l2, clip=clip, noise_multiplier=noise_multiplier or 0.0)
        ranges = {name: (low, high) for name, low, high in bounds}
        if ranges and set(ranges) != set(features):
            raise ValueError(f"--bound is needed for every feature, or none: missing "
                             f"{sorted(set(features) - set(ranges))}, unknown {sorted(set(ranges) - set(features))}")
        feature_bounds = [ranges[name] for name in features] if ranges else None
        held = None
        if validation is not None:
            frame = pd.read_csv(validation)
            held = (frame[list(features)].to_numpy(dtype=float), frame[label].to_numpy(dtype=float))
    except (FederatedError, KeyError, ValueError) as exc:
        raise click.UsageError(f"cannot use the options: {exc}") from exc
    if contribution and held is None:
        raise click.UsageError("--contribution needs --validation: contributions are scored on your own rows")
    if contribution and not config.private:
        raise click.UsageError("--contribution needs differential privacy (--clip, --noise-multiplier, --bound): "
                               "without noise, two subsets' sums would show one provider's update")
    consumer = Consumer(url, token, client_for(url, token, key_path).signing_key)
    total = rounds * (1 + (len(assets) if contribution else 0))
    with click.progressbar(length=total, label="federated rounds", show_pos=True, file=sys.stderr,
                           item_show_func=lambda line: line) as bar:
        def progress(entry: dict) -> None:
            scores = ", ".join(f"{name} {value:.4f}" for name, value in entry["metrics"].items())
            bar.update(1, f"{entry['rows']} rows{', ' + scores if scores else ''}")

        try:
            result = train(consumer, grant, assets, features=list(features), label=label, config=config, rows=rows,
                           validation=held, bounds=feature_bounds, min_quorum=min_quorum,
                           contribution=contribution, progress=progress)
        except (ApiError, JobFailed) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"job {result.job_id}: {len([h for h in result.history if not h['leave_one_out']])} rounds, "
               f"ε {result.epsilon:g}")
    click.echo(f"model (weights on standardized features, then intercept): "
               f"{', '.join(f'{v:.6f}' for v in result.model.theta)}")
    for provider, share in sorted(result.contributions.items()):
        click.echo(f"contribution {provider} {share:.1%}")
    if plot_path:
        click.echo(f"training curve: {result.plot(plot_path)}")


@click.command("plot")
@click.argument("job_id")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the PNG file to write")
@url_option
@token_option
def job_plot(job_id, out, url, token) -> None:
    """Write the training curve of a finished federated training as a PNG (its consumer's metrics per round)."""
    from client.plots import training_curve
    from client.training import history_of

    report = call(client_for(url, token).get, f"/jobs/{job_id}/training")
    history = history_of(report["metrics"])
    if not any(entry["metrics"] for entry in history):
        raise click.ClickException(f"job {job_id} reported no per-round metrics to plot")
    training_curve(history, out, f"federated training {job_id}")
    final = history[-1]["metrics"] if history else {}
    click.echo(f"wrote {out}: {len([h for h in history if not h['leave_one_out']])} rounds"
               + "".join(f", final {name} {value:.4f}" for name, value in final.items()))


def register(job_group: click.Group) -> None:
    """Add `pdx job train` and `pdx job plot`."""
    job_group.add_command(job_train)
    job_group.add_command(job_plot)
