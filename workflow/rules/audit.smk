# The last step of a batch: fails (so the batch exits non-zero) when a WU in flight has gone
# unreported by the WS for longer than batch.unseen_alert_s, or when this batch's poll or claim
# failed.
rule audit:
    input:
        polled=f"{BATCH_DIR}/poll.json",
        claimed=f"{BATCH_DIR}/claim.json",
    output:
        f"{BATCH_DIR}/audit.json",
    log:
        "logs/audit.log",
    conda:
        "../envs/fahflow.yaml"
    params:
        config=CONFIG_FILE,
    shell:
        "fahflow batch audit --config {params.config} --polled {input.polled} "
        "--claimed {input.claimed} --out {output} > {log} 2>&1"
