"""The steps of a batch, one module each, in data-flow order.

``rule X`` in ``workflow/rules/X.smk`` runs ``fahflow batch X``, which calls ``X.py``'s one public
function. Each step is idempotent and keeps its progress in the ledger and in atomically written
files, so a batch killed at any line is resumed by the next (DESIGN §4):

claim → serialize → stage → create → poll → collect → analyze → push
"""
