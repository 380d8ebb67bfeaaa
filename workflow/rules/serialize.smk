# One job per Transformation owns its folder's products: the spec (from the ledger, where claim
# recorded it), the WU files every Task of it shares, and the manifest naming them.
rule serialize:
    output:
        manifest=f"{RESULTS}/transformations/{{transformation}}/manifest.json",
        spec=f"{RESULTS}/transformations/{{transformation}}/spec.yaml",
        wu_files=multiext(f"{RESULTS}/transformations/{{transformation}}/", *WU_FILES),
    log:
        "logs/serialize/{transformation}.log",
    conda:
        "../envs/fahflow.yaml"
    params:
        config=CONFIG_FILE,
    shell:
        "fahflow batch serialize {wildcards.transformation} --config {params.config} "
        "--out {output.manifest} > {log} 2>&1"
