# One job per Transformation owns its folder's products: the claimed Transformation (from the
# ledger, where claim recorded it), the WU files every Task of it shares, the manifest naming
# them, and units/ (what its kind ran for it: a gufe protocol's setup unit; empty for a spec).
rule serialize:
    output:
        manifest=f"{RESULTS}/transformations/{{transformation}}/manifest.json",
        claimed=f"{RESULTS}/transformations/{{transformation}}/transformation.json",
        wu_files=multiext(f"{RESULTS}/transformations/{{transformation}}/", *WU_FILES),
        units=directory(f"{RESULTS}/transformations/{{transformation}}/units"),
    log:
        "logs/serialize/{transformation}.log",
    conda:
        "../envs/fahflow.yaml"
    params:
        config=CONFIG_FILE,
    shell:
        "fahflow batch serialize {wildcards.transformation} --config {params.config} "
        "--out {output.manifest} > {log} 2>&1"
