"""Storyboard boards: a scene list becomes a board of panels (PNG, PDF, JSON), host-independent.

`scenes` parses the list, `options` holds the request's options, `prompts` plans each panel, `draw` generates the
panels through a caller-supplied "draw panel" callable, `layout` lays the board out, `writer` writes the folder.
"""
