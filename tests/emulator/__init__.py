"""Tests of the Message Batches API emulator, over real HTTP on 127.0.0.1."""
