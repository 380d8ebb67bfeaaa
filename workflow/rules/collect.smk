# Copies the WS's globals.csv/science.log: a file the WS writes is never a rule output.
rule collect:
    input:
        created=f"{RESULTS}/tasks/{{task}}/created.json",
    output:
        collected=f"{RESULTS}/tasks/{{task}}/collected.json",
    log:
        "logs/collect/{task}.log",
    conda:
        "../envs/fahflow.yaml"
    params:
        config=CONFIG_FILE,
    shell:
        "fahflow batch collect {wildcards.task} --config {params.config} "
        "--out {output.collected} > {log} 2>&1"
