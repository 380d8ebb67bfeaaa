checkpoint poll:
    input:
        claimed=f"{BATCH_DIR}/claim.json",
    output:
        f"{BATCH_DIR}/poll.json",
    log:
        "logs/poll.log",
    conda:
        "../envs/fahflow.yaml"
    params:
        config=CONFIG_FILE,
    shell:
        "fahflow batch poll --config {params.config} --out {output} > {log} 2>&1"
