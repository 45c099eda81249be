"""Answers "can this tenant do this?": effective plan, grants, periods and checks."""
