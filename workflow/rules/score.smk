rule score:
    input:
        model=rules.finetune.output.model,
        wings=rules.wings.output.table,
        qc=rules.qc.output.table,
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
    output:
        predictions="results/score/{subset}/predictions.csv",
        specimens="results/score/{subset}/specimens.csv",
        metrics="results/score/{subset}/metrics.json",
        submission="results/score/{subset}/submission.txt",
        curves=report(
            "results/score/{subset}/curves.png",
            caption="../report/score_curves.rst",
            category="4. Hybrid detection",
            subcategory="{subset}",
            labels={"table": "{subset}", "figure": "ROC and precision-recall"},
        ),
        histogram=report(
            "results/score/{subset}/histogram.png",
            caption="../report/score_histogram.rst",
            category="4. Hybrid detection",
            subcategory="{subset}",
            labels={"table": "{subset}", "figure": "score histograms"},
        ),
        novelty=report(
            "results/score/{subset}/novelty.png",
            caption="../report/novelty.rst",
            category="4. Hybrid detection",
            subcategory="{subset}",
            labels={"table": "{subset}", "figure": "novelty"},
        ),
        explanations=directory("results/score/{subset}/explanations"),
        explanation_sheet=report(
            "results/score/{subset}/explanations.png",
            caption="../report/explanations.rst",
            category="4. Hybrid detection",
            subcategory="{subset}",
            labels={"table": "{subset}", "figure": "why called hybrid"},
        ),
    log:
        "logs/score/{subset}.log",
    benchmark:
        "benchmarks/score/{subset}.tsv"
    params:
        code=library_code("score.py"),
        settings=config["score"],
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/score.py"


rule score_summary:
    input:
        metrics=expand(rules.score.output.metrics, subset=SCORED),
        finetune=rules.finetune.output.metrics,
        duplicates=rules.split.output.duplicates,
        warnings=[rules.train_unet.output.metrics, rules.qc.output.metrics],
    output:
        table="results/score/summary.csv",
        html=report(
            "results/score/summary.html",
            caption="../report/score_summary.rst",
            category="4. Hybrid detection",
            subcategory="all tables",
            labels={"table": "all", "figure": "metrics"},
        ),
    log:
        "logs/score/summary.log",
    params:
        code=library_code("score_summary.py"),
    localrule: True
    conda:
        "../../envs/tables.yaml"
    script:
        "../scripts/score_summary.py"
