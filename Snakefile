# fahflow: one batch of the Folding@home NEQ free-energy workflow.
#
#   snakemake --profile fah          (by hand, or from cron through scripts/fah-cron)
#
# A batch claims Tasks, builds and stages their work units, creates the jobs on the work
# server, polls it once per PROJECT, and analyzes and pushes back what finished; then it exits,
# even while work is still running on FAH. Progress lives in the ledger and in results/: the
# next batch resumes wherever this one stopped. The DAG holds only the Tasks that can progress
# now (see workflow/rules/common.smk). Every rule calls one `fahflow batch <step>` command.

from snakemake.utils import min_version

min_version("9")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/claim.smk"
include: "workflow/rules/serialize.smk"
include: "workflow/rules/stage.smk"
include: "workflow/rules/create.smk"
include: "workflow/rules/poll.smk"
include: "workflow/rules/collect.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/push.smk"
include: "workflow/rules/audit.smk"


rule all:
    default_target: True
    input:
        get_final_output,
