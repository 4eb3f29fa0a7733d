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
        settings=config["finetune"],
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
