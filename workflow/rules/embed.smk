rule embed:
    input:
        model=rules.finetune.output.model,
        wings=rules.wings.output.table,
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        phash_pairs=rules.split.output.duplicates,
    output:
        embeddings=expand("results/embed/{table}/embeddings.parquet", table=EMBEDDED),
        probabilities=expand("results/embed/{table}/member_probabilities.npy", table=EMBEDDED),
        metrics=expand("results/embed/{table}/metrics.json", table=EMBEDDED),
        duplicates=expand("results/embed/{table}/near_duplicates.csv", table=EMBEDDED),
        **per_table_figures("results/embed/{table}/map.png", "../report/embedding_map.rst", "embeddings", "embedding map"),
    log:
        "logs/embed/embed.log",
    benchmark:
        "benchmarks/embed/embed.tsv"
    params:
        code=library_code("embed.py"),
        tables=EMBEDDED,
        settings=review_settings("batch_size", "seed", "duplicate_cosine"),
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/embed.py"
