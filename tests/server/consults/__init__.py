"""Tests of video consults: duty, requests, signaling."""
