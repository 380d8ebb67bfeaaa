rule create:
    input:
        staged=f"{RESULTS}/tasks/{{task}}/staged.json",
    output:
        created=f"{RESULTS}/tasks/{{task}}/created.json",
    log:
        "logs/create/{task}.log",
    conda:
        "../envs/fahflow.yaml"
    params:
        config=CONFIG_FILE,
    shell:
        "fahflow batch create {wildcards.task} --config {params.config} "
        "--out {output.created} > {log} 2>&1"
