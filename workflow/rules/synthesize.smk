rule synthesize:
    output:
        train="resources/synthetic/train.csv",
        dev="resources/synthetic/dev.csv",
        taxa="resources/synthetic/taxa.csv",
        images=directory("resources/synthetic/images"),
        masks=directory("resources/synthetic/masks"),
        sheet="results/synthetic/sheet.png",
    log:
        "logs/synthesize.log",
    benchmark:
        "benchmarks/synthesize.tsv"
    params:
        code=library_code("synthesize.py"),
        settings=config["dataset"].get("synthetic", {}),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/tables.yaml"
    script:
        "../scripts/synthesize.py"
