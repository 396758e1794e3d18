"""Training presets (JSON files): demo-cpu, paper-r18, paper-r50, tiny."""
