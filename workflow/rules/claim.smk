checkpoint claim:
    output:
        f"{BATCH_DIR}/claim.json",
    log:
        "logs/claim.log",
    conda:
        "../envs/fahflow.yaml"
    params:
        config=CONFIG_FILE,
    shell:
        "fahflow batch claim --config {params.config} --out {output} > {log} 2>&1"
