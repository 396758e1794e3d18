"""Pure functions and classes the widgets call: geo maths, audio I/O, settings, the project (bundle +
atlas), sound queries, the demo bootstrap and the training job. Nothing here imports Qt."""
