"""Qt widgets: each renders part of the state and forwards the user's input to the controller."""
