"""Video consults: who is on duty, consult requests, the lobby and the call's signaling."""
