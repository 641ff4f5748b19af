"""The paper's experiment as one resumable plan: mixtures -> training -> generation -> judging -> report."""
