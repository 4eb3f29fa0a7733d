"""The held-out-cross validation: a second model trained without some crosses and scored on them.

The training table shows one real cross, so its own validation split cannot tell whether a setting
helps with the crosses an evaluation table brings. A second model is trained on the same balanced
set less every hybrid of some held-out crosses (the real crosses, and composed pairs of subspecies
with rare parents); it is scored on what it never saw: every real hybrid photograph of the training
table, and composites of the held-out pairs made from val/test photographs, against the validation
split's non-hybrids. It is a diagnostic of unseen crosses built from the training table, which holds
no mimic species and none of the evaluation photographs: settings are chosen on the
development-phase table.
"""
