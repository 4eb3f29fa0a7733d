rule augment:
    input:
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        qc=rules.qc.output.table,
        wings=rules.wings.output.table,
    output:
        images=directory("results/balance/shards/{scatteritem}/images"),
        copies="results/balance/shards/{scatteritem}/copies.csv",
    log:
        "logs/balance/augment/{scatteritem}.log",
    benchmark:
        "benchmarks/balance/augment/{scatteritem}.tsv"
    params:
        code=library_code("augment.py"),
        settings=config["balance"],
        mask_settings=mask_settings("background"),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/augment.py"


rule balance:
    input:
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        qc=rules.qc.output.table,
        wings=rules.wings.output.table,
        copies=gather.shard(rules.augment.output.copies),
    output:
        manifest="results/balance/manifest.csv",
        summary="results/balance/summary.json",
        counts=report(
            "results/balance/class_counts.png",
            caption="../report/class_counts.rst",
            category="2. Balancing",
            labels={"figure": "class counts"},
        ),
    log:
        "logs/balance/balance.log",
    benchmark:
        "benchmarks/balance/balance.tsv"
    params:
        code=library_code("balance.py"),
        settings=config["balance"],
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/balance.py"
