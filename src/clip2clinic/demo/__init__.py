"""`clip2clinic demo`: phantom -> prepare -> train every variant -> evaluate -> summary."""
