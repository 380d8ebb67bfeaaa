# Copies the WS's globals.csv/science.log into globals/: a file the WS writes is never a rule
# output, the copies are (a failed or killed collect's copies are deleted and fetched again).
rule collect:
    input:
        created=f"{RESULTS}/tasks/{{task}}/created.json",
    output:
        collected=f"{RESULTS}/tasks/{{task}}/collected.json",
        globals=directory(f"{RESULTS}/tasks/{{task}}/globals"),
    log:
        "logs/collect/{task}.log",
    conda:
        "../envs/fahflow.yaml"
    params:
        config=CONFIG_FILE,
    shell:
        "fahflow batch collect {wildcards.task} --config {params.config} "
        "--out {output.collected} > {log} 2>&1"
