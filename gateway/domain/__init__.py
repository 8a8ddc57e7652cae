"""Pure rules: plain values in, decisions out. No I/O, no asyncio, time passed in."""
