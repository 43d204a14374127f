"""Language-model plumbing shared by the LM methods and metrics (question-answer batches)."""
