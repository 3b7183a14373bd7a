"""The pure core: inference, Dockerfile rendering, build and run.

It knows nothing of widgets, magics or servers; front ends pass a progress callback and render
the events it receives.
"""
