"""Client tools for a running aiges-load: `aiges call` and `aiges bench` (SPEC 9).

request: documents built from command-line inputs, and outputs read back;
call: one request or one streamed file; bench: load with many workers;
stats: what a bench run measured, as numbers and as a table (no I/O).
"""
