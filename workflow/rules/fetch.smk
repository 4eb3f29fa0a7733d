rule fetch:
    input:
        table=table_file,
        taxa=TAXA,
    output:
        manifest="results/data/tables/{table}.csv",
    log:
        main="logs/fetch/{table}.log",
        failures="logs/fetch/{table}_failures.csv",
    benchmark:
        "benchmarks/fetch/{table}.tsv"
    params:
        code=library_code("fetch.py"),
        location=lambda wildcards: TABLES[wildcards.table],
        store="resources/images",
        settings=config["fetch"],
    localrule: True
    threads: 2
    resources:
        mem_mb=2000,
        runtime=120,
    conda:
        "../../envs/tables.yaml"
    script:
        "../scripts/fetch.py"


rule metadata:
    input:
        manifests=expand(rules.fetch.output.manifest, table=TABLES),
        exclude=exclude_input,
    output:
        metadata="results/data/metadata.csv",
    log:
        "logs/metadata.log",
    params:
        code=library_code("metadata.py"),
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/tables.yaml"
    script:
        "../scripts/metadata.py"
