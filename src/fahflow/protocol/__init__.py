"""NEQ-cycling work units: the transformation spec, the WU builder, core.xml and project selection.

``spec`` reads and validates a YAML transformation spec; ``build`` turns a spec into the four files
a FAH OpenMM core runs (core.xml, system/state/integrator .xml.bz2; core.xml itself is rendered
by :mod:`fahflow.corexml`, which the config shares); ``projects`` maps a system's size to the
PROJECT (effort bucket) it runs in.
"""
