from dataclasses import fields

from hybridwing.finetune.steps import FinetuneOutputs, finetune_step
from hybridwing.logs import log_to_file
from hybridwing.model.card import write_model_card

log_to_file(snakemake.log[0])
outputs = FinetuneOutputs(**{field.name: getattr(snakemake.output, field.name) for field in fields(FinetuneOutputs)})
finetune_step(
    manifest_path=snakemake.input.manifest,
    metadata_path=snakemake.input.metadata,
    splits_path=snakemake.input.splits,
    wings_path=snakemake.input.wings,
    segmenter_path=snakemake.input.segmenter,
    outputs=outputs,
    checkpoint_path=snakemake.params.checkpoint,
    cache_dir=snakemake.params.token_cache,
    settings=snakemake.params.settings,
    mask_settings=snakemake.params.mask_settings,
    score_method=snakemake.params.score_method,
    threads=snakemake.threads,
    held_out_path=snakemake.input.held_out if "held_out" in snakemake.input.keys() else None,  # noqa: SIM118 - `in` on a Namedlist tests values
)
write_model_card(
    outputs.model,
    outputs.metrics,
    outputs.per_class,
    snakemake.input.manifest,
    snakemake.input.metadata,
    snakemake.output.card,
)
