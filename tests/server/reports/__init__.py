"""Tests of signed reports."""
