from hybridwing.finetune.steps import finetune_step
from hybridwing.logs import log_to_file
from hybridwing.model.card import write_model_card

log_to_file(snakemake.log[0])
finetune_step(
    manifest_path=snakemake.input.manifest,
    metadata_path=snakemake.input.metadata,
    splits_path=snakemake.input.splits,
    wings_path=snakemake.input.wings,
    segmenter_path=snakemake.input.segmenter,
    model_dir=snakemake.output.model,
    history_path=snakemake.output.history,
    metrics_path=snakemake.output.metrics,
    curve_path=snakemake.output.curve,
    per_class_path=snakemake.output.per_class,
    confusion_path=snakemake.output.confusion,
    confusion_plot=snakemake.output.confusion_plot,
    per_class_epochs_path=snakemake.output.per_class_epochs,
    confusion_epochs_path=snakemake.output.confusion_epochs,
    misclassified_path=snakemake.output.misclassified,
    losses_path=snakemake.output.losses,
    checkpoint_path=snakemake.params.checkpoint,
    cache_dir=snakemake.params.token_cache,
    settings=snakemake.params.settings,
    mask_settings=snakemake.params.mask_settings,
    score_method=snakemake.params.score_method,
    threads=snakemake.threads,
    without_crosses_path=snakemake.input.pairs if "pairs" in snakemake.input.keys() else None,  # noqa: SIM118 - `in` on a Namedlist tests values
)
write_model_card(
    snakemake.output.model,
    snakemake.output.metrics,
    snakemake.output.per_class,
    snakemake.input.manifest,
    snakemake.input.metadata,
    snakemake.input.holdout if "holdout" in snakemake.input.keys() else None,  # noqa: SIM118 - as above
)
