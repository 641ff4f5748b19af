"""Expert review web app: reviewers accept, reject or edit triplets; raters rank outputs blind."""
