"""Client side of the Folding@home work-server (WS) and assignment-server (AS) APIs."""
