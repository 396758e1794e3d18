"""The model bundle (torch-free): two ONNX encoders and a manifest, what ``export`` writes and the app
reads (:mod:`engine.bundle.format`). The other format between engine and app is the atlas
(:mod:`engine.atlas.format`)."""
