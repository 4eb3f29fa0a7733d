rule split:
    input:
        metadata=rules.metadata.output.metadata,
    output:
        splits="results/data/splits.csv",
        duplicates="results/data/duplicates.csv",
        summary="results/data/split_summary.csv",
    log:
        "logs/split.log",
    benchmark:
        "benchmarks/split.tsv"
    params:
        code=library_code("split.py"),
        settings=config["split"],
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/tables.yaml"
    script:
        "../scripts/split.py"
