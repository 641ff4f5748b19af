"""The dataset as an artifact: export and import (`io`), statistics (`stats`), and the
published folder with its generated card (`publish`)."""
