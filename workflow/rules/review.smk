rule triage:
    input:
        model=rules.finetune.output.model,
        metadata=rules.metadata.output.metadata,
        embeddings=rules.embed.output.embeddings,
        probabilities=rules.embed.output.probabilities,
    output:
        zero_shot=expand("results/review/{table}/zero_shot.csv", table=EMBEDDED),
        triage=expand("results/review/{table}/triage.csv", table=EMBEDDED),
        **per_table_figures("results/review/{table}/bands.png", "../report/triage_bands.rst", "triage", "triage bands"),
        **per_table_figures("results/review/{table}/misclassified.png", "../report/misclassified.rst", "misclassified", "misclassified"),
    log:
        "logs/review/triage.log",
    benchmark:
        "benchmarks/review/triage.tsv"
    params:
        code=library_code("triage.py"),
        tables=EMBEDDED,
        settings=review_settings("triage", "zero_shot", "sheet_images"),
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/triage.py"


rule label_issues:
    input:
        embeddings=rules.embed.output.embeddings[EMBEDDED.index("train")],
        model=rules.finetune.output.model,
        losses=rules.finetune.output.losses,
    output:
        issues="results/review/label_issues.csv",
        sheet=report(
            "results/review/label_issues.png",
            caption="../report/label_issues.rst",
            category="5. Review",
            subcategory="label issues",
            labels={"figure": "lowest label quality"},
        ),
    log:
        "logs/review/label_issues.log",
    params:
        code=library_code("label_issues.py"),
        settings=review_settings("seed", "label_issues", "sheet_images"),
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/tables.yaml"
    script:
        "../scripts/label_issues.py"


rule rounds:
    input:
        scores=expand(rules.score.output.metrics, subset=SCORED),
        embed=rules.embed.output.metrics,
        triage=rules.triage.output.triage,
        extra_labels=reviewed_labels_input,
        exclude=exclude_input,
    output:
        record=f"results/review/rounds/{ROUND}.json",
        table="results/review/rounds.csv",
        figure=report(
            "results/review/rounds.png",
            caption="../report/rounds.rst",
            category="5. Review",
            subcategory="active learning",
            labels={"figure": "scores across rounds"},
        ),
    log:
        "logs/review/rounds.log",
    params:
        code=library_code("rounds.py"),
        round=ROUND,
        history="resources/review/rounds.jsonl",
    localrule: True
    conda:
        "../../envs/tables.yaml"
    script:
        "../scripts/rounds.py"
