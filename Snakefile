from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# Checks the config (workflow/schemas/config.schema.yaml and what a schema cannot say) and fills in
# its defaults before anything below reads it.
include: "workflow/rules/common.smk"


report: "workflow/report/workflow.rst"


scattergather:
    shard=config["shards"],


container: config.get("container")


include: "workflow/rules/synthesize.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/balance.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/holdout.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/review.smk"


rule all:
    default_target: True
    input:
        rules.split.output,
        rules.train_unet.output,
        rules.wings.output,
        rules.qc.output,
        coverage_outputs(),
        rules.balance.output,
        rules.finetune.output,
        expand(rules.score.output, subset=SCORED),
        rules.score_summary.output,
        rules.embed.output,
        rules.triage.output,
        rules.label_issues.output,
        rules.rounds.output,
        synthetic_outputs(),
        holdout_outputs(),
