rule holdout_pairs:
    input:
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        qc=rules.qc.output.table,
        wings=rules.wings.output.table,
    output:
        pairs="results/holdout/pairs.csv",
        thinned="results/holdout/thinned_parents.csv",
    log:
        "logs/holdout/pairs.log",
    params:
        code=library_code("holdout_pairs.py"),
        settings=config["holdout"],
    localrule: True
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/holdout_pairs.py"


use rule augment as augment_holdout with:
    input:
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        qc=rules.qc.output.table,
        wings=rules.wings.output.table,
        left_out=rules.holdout_pairs.output.thinned,
    output:
        images=directory("results/holdout/balance/shards/{scatteritem}/images"),
        copies="results/holdout/balance/shards/{scatteritem}/copies.csv",
    log:
        "logs/holdout/augment/{scatteritem}.log",
    benchmark:
        "benchmarks/holdout/augment/{scatteritem}.tsv"


use rule balance as balance_holdout with:
    input:
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        qc=rules.qc.output.table,
        wings=rules.wings.output.table,
        copies=gather.shard(rules.augment_holdout.output.copies),
        left_out=rules.holdout_pairs.output.thinned,
    output:
        manifest="results/holdout/balance/manifest.csv",
        summary="results/holdout/balance/summary.json",
        counts="results/holdout/balance/class_counts.png",
    log:
        "logs/holdout/balance.log",
    benchmark:
        "benchmarks/holdout/balance.tsv"


rule holdout_rows:
    input:
        manifest=holdout_manifest(),
        pairs=rules.holdout_pairs.output.pairs,
    output:
        held_out="results/holdout/held_out_rows.csv",
    log:
        "logs/holdout/rows.log",
    params:
        code=library_code("holdout_rows.py"),
    localrule: True
    conda:
        "../../envs/tables.yaml"
    script:
        "../scripts/holdout_rows.py"


use rule finetune as finetune_holdout with:
    input:
        manifest=holdout_manifest(),
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        wings=rules.wings.output.table,
        segmenter=rules.train_unet.output.model,
        held_out=rules.holdout_rows.output.held_out,
        trunk_weights=trunk_weights_file(),
    output:
        model=directory("results/holdout/model"),
        history="results/holdout/finetune/history.csv",
        metrics="results/holdout/finetune/metrics.json",
        curve="results/holdout/finetune/curve.png",
        confusion_plot="results/holdout/finetune/confusion.png",
        per_class="results/holdout/finetune/per_class.csv",
        confusion="results/holdout/finetune/confusion.csv",
        per_class_epochs="results/holdout/finetune/per_class_by_epoch.csv",
        confusion_epochs="results/holdout/finetune/confusion_by_epoch.csv",
        misclassified="results/holdout/finetune/misclassified.csv",
        losses="results/holdout/finetune/train_losses.csv",
        card="results/holdout/finetune/MODEL_CARD.md",
    log:
        "logs/holdout/finetune.log",
    benchmark:
        "benchmarks/holdout/finetune.tsv"
    params:
        code=library_code("finetune.py"),
        settings=config["finetune"],
        mask_settings=mask_settings("all"),
        score_method=config["score"]["method"],
        **training_state("finetune_holdout"),


rule holdout_score:
    input:
        model=rules.finetune_holdout.output.model,
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        qc=rules.qc.output.table,
        wings=rules.wings.output.table,
        pairs=rules.holdout_pairs.output.pairs,
    output:
        images=directory("results/holdout/images"),
        predictions="results/holdout/predictions.csv",
        metrics="results/holdout/metrics.json",
        figure=report(
            "results/holdout/recall.png",
            caption="../report/holdout.rst",
            category="4. Hybrid detection",
            subcategory="held-out crosses",
            labels={"table": "held-out crosses", "figure": "recall per cross"},
        ),
    log:
        "logs/holdout/score.log",
    benchmark:
        "benchmarks/holdout/score.tsv"
    params:
        code=library_code("holdout_score.py"),
        settings=config["holdout"],
        mask_settings=mask_settings("background"),
        batch_size=config["score"]["batch_size"],
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/holdout_score.py"
