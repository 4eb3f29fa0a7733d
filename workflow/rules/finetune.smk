rule finetune:
    input:
        manifest=rules.balance.output.manifest,
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        wings=rules.wings.output.table,
        segmenter=rules.train_unet.output.model,
        trunk_weights=trunk_weights_file(),
    output:
        model=directory("results/finetune/model"),
        history="results/finetune/history.csv",
        metrics="results/finetune/metrics.json",
        curve=report(
            "results/finetune/curve.png",
            caption="../report/finetune_curve.rst",
            category="3. Fine-tuning",
            labels={"figure": "training curves"},
        ),
        confusion_plot=report(
            "results/finetune/confusion.png",
            caption="../report/confusion.rst",
            category="3. Fine-tuning",
            labels={"figure": "confusion matrix"},
        ),
        per_class="results/finetune/per_class.csv",
        confusion="results/finetune/confusion.csv",
        per_class_epochs="results/finetune/per_class_by_epoch.csv",
        confusion_epochs="results/finetune/confusion_by_epoch.csv",
        misclassified="results/finetune/misclassified.csv",
        losses="results/finetune/train_losses.csv",
        card=report(
            "results/finetune/MODEL_CARD.md",
            caption="../report/model_card.rst",
            category="3. Fine-tuning",
            labels={"figure": "model card"},
        ),
    log:
        "logs/finetune.log",
    benchmark:
        "benchmarks/finetune.tsv"
    params:
        code=library_code("finetune.py"),
        settings=finetune_settings(),
        mask_settings=mask_settings("all"),
        score_method=config["score"]["method"],
        **training_state("finetune"),
    threads: 2
    resources:
        mem_mb=12000,
        runtime=240,
        gpu=1,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/finetune.py"


rule holdout_pairs:
    input:
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        qc=rules.qc.output.table,
        wings=rules.wings.output.table,
    output:
        pairs="results/score/unseen_cross/pairs.csv",
        thinned="results/score/unseen_cross/thinned_parents.csv",
    log:
        "logs/finetune/holdout_pairs.log",
    params:
        code=library_code("holdout_pairs.py"),
        settings=config["finetune"]["holdout_crosses"],
        seed=config["balance"]["seed"],
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
        images=directory("results/balance/holdout/shards/{scatteritem}/images"),
        copies="results/balance/holdout/shards/{scatteritem}/copies.csv",
    log:
        "logs/balance/augment_holdout/{scatteritem}.log",
    benchmark:
        "benchmarks/balance/augment_holdout/{scatteritem}.tsv"


use rule balance as balance_holdout with:
    input:
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        qc=rules.qc.output.table,
        wings=rules.wings.output.table,
        copies=gather.shard(rules.augment_holdout.output.copies),
        left_out=rules.holdout_pairs.output.thinned,
    output:
        manifest="results/balance/holdout/manifest.csv",
        summary="results/balance/holdout/summary.json",
        counts="results/balance/holdout/class_counts.png",
    log:
        "logs/balance/balance_holdout.log",
    benchmark:
        "benchmarks/balance/balance_holdout.tsv"


use rule finetune as finetune_holdout with:
    input:
        manifest=holdout_manifest(),
        metadata=rules.metadata.output.metadata,
        splits=rules.split.output.splits,
        wings=rules.wings.output.table,
        segmenter=rules.train_unet.output.model,
        pairs=rules.holdout_pairs.output.pairs,
        trunk_weights=trunk_weights_file(),
    output:
        model=directory("results/finetune/holdout/model"),
        history="results/finetune/holdout/history.csv",
        metrics="results/finetune/holdout/metrics.json",
        curve="results/finetune/holdout/curve.png",
        confusion_plot="results/finetune/holdout/confusion.png",
        per_class="results/finetune/holdout/per_class.csv",
        confusion="results/finetune/holdout/confusion.csv",
        per_class_epochs="results/finetune/holdout/per_class_by_epoch.csv",
        confusion_epochs="results/finetune/holdout/confusion_by_epoch.csv",
        misclassified="results/finetune/holdout/misclassified.csv",
        losses="results/finetune/holdout/train_losses.csv",
        card="results/finetune/holdout/MODEL_CARD.md",
    log:
        "logs/finetune_holdout.log",
    benchmark:
        "benchmarks/finetune_holdout.tsv"
    params:
        code=library_code("finetune.py"),
        settings=finetune_settings(),
        mask_settings=mask_settings("all"),
        score_method=config["score"]["method"],
        **training_state("finetune_holdout"),
