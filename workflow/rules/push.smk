rule push:
    input:
        outcome=get_outcome,
    output:
        pushed=f"{RESULTS}/tasks/{{task}}/pushed.json",
    log:
        "logs/push/{task}.log",
    conda:
        "../envs/fahflow.yaml"
    params:
        config=CONFIG_FILE,
        outcome=lambda wildcards, input: (
            f"--outcome {input.outcome}" if input.outcome else ""
        ),
    shell:
        "fahflow batch push {wildcards.task} --config {params.config} {params.outcome} "
        "--out {output.pushed} > {log} 2>&1"
