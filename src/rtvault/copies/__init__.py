"""Copies: every byte on two independent stores. Replication from a store to its copy (`replicate`), what each
store holds and how well it is covered (`status`), rolling verification and self-repair (`verify`).
"""
