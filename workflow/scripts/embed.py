from hybridwing.logs import log_to_file
from hybridwing.review.embedding_table import table_outputs
from hybridwing.review.steps import embed_step

log_to_file(snakemake.log[0])
embed_step(
    model_dir=snakemake.input.model,
    wings_path=snakemake.input.wings,
    metadata_path=snakemake.input.metadata,
    splits_path=snakemake.input.splits,
    phash_pairs_path=snakemake.input.phash_pairs,
    outputs=table_outputs(
        snakemake.output, snakemake.params.tables, ("embeddings", "probabilities", "metrics", "duplicates", "map")
    ),
    settings=snakemake.params.settings,
    threads=snakemake.threads,
)
