"""The dataset as an artifact: export and import (`io`), statistics (`stats`), the
published folder with its generated card (`publish`), n-gram decontamination against eval
prompts (`decontaminate`) and preference pairs for DPO and reward models (`preferences`)."""
