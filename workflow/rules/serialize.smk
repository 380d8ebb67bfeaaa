rule serialize:
    input:
        spec=f"{RESULTS}/transformations/{{transformation}}/spec.yaml",
    output:
        manifest=f"{RESULTS}/transformations/{{transformation}}/manifest.json",
    log:
        "logs/serialize/{transformation}.log",
    conda:
        "../envs/fahflow.yaml"
    params:
        config=CONFIG_FILE,
    shell:
        "fahflow batch serialize {wildcards.transformation} --config {params.config} "
        "--out {output.manifest} > {log} 2>&1"
