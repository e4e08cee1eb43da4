"""What the ready-made components (:mod:`pipelines.components`) do inside their task.

Kept apart from the component definitions: a task's process imports kfp in its runtime
form (no ``dsl.component``), so this package never imports kfp.
"""
