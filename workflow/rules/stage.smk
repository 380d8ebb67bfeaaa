rule stage:
    input:
        manifest=get_manifest,
    output:
        staged=f"{RESULTS}/tasks/{{task}}/staged.json",
    log:
        "logs/stage/{task}.log",
    conda:
        "../envs/fahflow.yaml"
    params:
        config=CONFIG_FILE,
    shell:
        "fahflow batch stage {wildcards.task} --config {params.config} "
        "--manifest {input.manifest} --out {output.staged} > {log} 2>&1"
