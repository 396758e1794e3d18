"""The two file formats between engine and app (torch-free): the model bundle and, in
:mod:`engine.atlas`, the atlas."""
