from hybridwing.logs import log_to_file
from hybridwing.review.label_issues import label_issues_step

log_to_file(snakemake.log[0])
label_issues_step(
    embeddings_path=snakemake.input.embeddings,
    model_dir=snakemake.input.model,
    losses_path=snakemake.input.losses,
    issues_path=snakemake.output.issues,
    sheet_path=snakemake.output.sheet,
    settings=snakemake.params.settings,
)
