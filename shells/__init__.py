"""Shells: clients of protocol v1 (terminal, GUI panel). They import only vtkernel.protocol."""
