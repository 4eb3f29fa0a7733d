from hybridwing.logs import log_to_file
from hybridwing.review.embedding_table import table_outputs
from hybridwing.review.triage_step import triage_step

log_to_file(snakemake.log[0])
triage_step(
    model_dir=snakemake.input.model,
    metadata_path=snakemake.input.metadata,
    inputs={kind: list(snakemake.input[kind]) for kind in ("embeddings", "probabilities")},
    outputs=table_outputs(snakemake.output, snakemake.params.tables, ("zero_shot", "triage", "bands", "misclassified")),
    settings=snakemake.params.settings,
    threads=snakemake.threads,
)
