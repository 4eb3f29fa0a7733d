rule teacher_masks:
    input:
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        provided=provided_masks,
    output:
        masks=directory("results/segment/teacher/shards/{scatteritem}/masks"),
        index="results/segment/teacher/shards/{scatteritem}/index.csv",
    log:
        "logs/segment/teacher_masks/{scatteritem}.log",
    benchmark:
        "benchmarks/segment/teacher_masks/{scatteritem}.tsv"
    params:
        code=library_code("teacher_masks.py"),
        settings=teacher_settings(),
        every_table=bool(PATTERN_MASKS),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/teacher_masks.py"


rule teacher_index:
    input:
        shards=gather.shard(rules.teacher_masks.output.index),
    output:
        index="results/segment/teacher/index.csv",
    localrule: True
    log:
        "logs/segment/teacher_index.log",
    params:
        code=library_code("gather_table.py"),
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/tables.yaml"
    script:
        "../scripts/gather_table.py"


rule train_unet:
    input:
        index=rules.teacher_index.output.index,
    output:
        model="results/segment/unet/model.pt",
        metrics="results/segment/unet/metrics.json",
        history="results/segment/unet/history.csv",
        curve=report(
            "results/segment/unet/curve.png",
            caption="../report/unet_curve.rst",
            category="1. Segmentation",
            labels={"figure": "U-Net training"},
        ),
    log:
        "logs/segment/train_unet.log",
    benchmark:
        "benchmarks/segment/train_unet.tsv"
    params:
        code=library_code("train_unet.py"),
        settings=config["unet"],
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=0,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train_unet.py"


rule segment:
    input:
        model=rules.train_unet.output.model,
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
    output:
        masks=directory("results/segment/shards/{scatteritem}/masks"),
        qc="results/segment/shards/{scatteritem}/qc.csv",
    log:
        "logs/segment/segment/{scatteritem}.log",
    benchmark:
        "benchmarks/segment/segment/{scatteritem}.tsv"
    params:
        code=library_code("segment.py"),
        mask_settings=mask_settings("segmentation"),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/segment.py"


rule qc:
    input:
        shards=gather.shard(rules.segment.output.qc),
        teacher=rules.teacher_index.output.index,
        metadata=rules.metadata.output.metadata,
        patterns=pattern_masks_input,
    output:
        table="results/segment/qc.csv",
        metrics="results/segment/metrics.json",
    log:
        "logs/segment/qc.log",
    benchmark:
        "benchmarks/segment/qc.tsv"
    params:
        code=library_code("qc.py"),
        pattern_masks=PATTERN_MASKS,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/qc.py"


rule coverage_figures:
    input:
        qc=rules.qc.output.table,
        metadata=rules.metadata.output.metadata,
        patterns=pattern_masks_input,
    output:
        histogram=report(
            "results/segment/coverage.png",
            caption="../report/coverage.rst",
            category="1. Segmentation",
            labels={"figure": "pattern coverage"},
        ),
        sheet=report(
            "results/segment/coverage_worst.png",
            caption="../report/coverage_worst.rst",
            category="1. Segmentation",
            labels={"figure": "least coverage"},
        ),
    log:
        "logs/segment/coverage_figures.log",
    params:
        code=library_code("coverage_figures.py"),
        pattern_masks=PATTERN_MASKS,
    localrule: True
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/coverage_figures.py"


rule apply_masks:
    input:
        qc=rules.segment.output.qc,
        metadata=rules.metadata.output.metadata,
    output:
        wings=directory("results/segment/shards/{scatteritem}/wings"),
        table="results/segment/shards/{scatteritem}/wings.csv",
    log:
        "logs/segment/apply_masks/{scatteritem}.log",
    benchmark:
        "benchmarks/segment/apply_masks/{scatteritem}.tsv"
    params:
        code=library_code("apply_masks.py"),
        mask_settings=mask_settings("background"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/apply_masks.py"


rule wings:
    input:
        shards=gather.shard(rules.apply_masks.output.table),
        qc=rules.qc.output.table,
        metadata=rules.metadata.output.metadata,
    output:
        table="results/segment/wings.csv",
        sheet=report(
            "results/segment/overlay.png",
            caption="../report/overlay.rst",
            category="1. Segmentation",
            labels={"figure": "overlay sheet"},
        ),
    localrule: True
    log:
        "logs/segment/wings.log",
    params:
        code=library_code("wings.py"),
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/wings.py"
