from hybridwing.logs import log_to_file
from hybridwing.segment.steps import coverage_figures_step

log_to_file(snakemake.log[0])
coverage_figures_step(
    qc_path=snakemake.input.qc,
    metadata_path=snakemake.input.metadata,
    pattern_dir=snakemake.params.pattern_masks,
    histogram_path=snakemake.output.histogram,
    sheet_path=snakemake.output.sheet,
)
