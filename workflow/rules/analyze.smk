rule analyze:
    input:
        collected=f"{RESULTS}/tasks/{{task}}/collected.json",
        globals=f"{RESULTS}/tasks/{{task}}/globals",
    output:
        outcome=f"{RESULTS}/tasks/{{task}}/outcome.json",
    log:
        "logs/analyze/{task}.log",
    conda:
        "../envs/fahflow.yaml"
    params:
        config=CONFIG_FILE,
    shell:
        "fahflow batch analyze {wildcards.task} --config {params.config} "
        "--collected {input.collected} --out {output.outcome} > {log} 2>&1"
