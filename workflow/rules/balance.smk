rule balance:
    input:
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        qc=rules.segment.output.qc,
        wings=rules.apply_masks.output.table,
    output:
        images=directory("results/balance/images"),
        manifest="results/balance/manifest.csv",
        summary="results/balance/summary.json",
        counts=report(
            "results/balance/class_counts.png",
            caption="../report/class_counts.rst",
            category="2. Balancing",
            labels={"figure": "class counts"},
        ),
    log:
        "logs/balance.log",
    benchmark:
        "benchmarks/balance.tsv"
    params:
        settings=config["balance"],
        background=background_settings(),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/hybridwing.yaml"
    script:
        "../scripts/balance.py"
