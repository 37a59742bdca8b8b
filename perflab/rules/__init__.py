"""Pure rules that yield results records (docs/design_decisions.md, "Where rules live").

Below ``lab`` and ``report``, above the results schema (``perflab.store.results``): a rule here
takes values or records and returns records, reads no file and drives no device. ``analysis``
keeps the rules over plain values; this layer applies them to the schema.
"""
